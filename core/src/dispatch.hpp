// Running an op: shape inference, the active backend's kernel (or the op's fallback, or the core's
// own view for reshape), in-place updates, and recording the result for autograd. Every op the
// core, a layer or an optimizer runs comes through run_op (lamina/ops.hpp has the by-name form and
// assign()).
// Depends on op_registry.hpp, backend_entry.hpp, tensor_impl.hpp, autograd.hpp, plugins.hpp (the
// active backend) and, through launch_recorder.hpp only, on step replay.
#pragma once

#include "op_registry.hpp"

#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <vector>

namespace lamina {

// Runs `op` on `given`.
std::vector<Tensor> run_op(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs);
// run_op for a name given as a C string by a plugin (looked up through a per-thread cache).
std::vector<Tensor> run_named_op(const char* name, const std::vector<Tensor>& given, const Attributes& attrs);

}  // namespace lamina
