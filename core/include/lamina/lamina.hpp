// Everything a lamina program needs.
#pragma once

#include <lamina/backend.hpp>
#include <lamina/batches.hpp>
#include <lamina/callbacks.hpp>
#include <lamina/datasets.hpp>
#include <lamina/distributed.hpp>
#include <lamina/error.hpp>
#include <lamina/h5.hpp>
#include <lamina/layers.hpp>
#include <lamina/model.hpp>
#include <lamina/ops.hpp>
#include <lamina/optimizers.hpp>
#include <lamina/tensor.hpp>
