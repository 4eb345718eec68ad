// Folding a BatchNormalization into the Conv2D or Dense before it, for inference (docs/normalization.md).
//
// With k = gamma/√(moving_variance + ε) per channel, BN(conv(x; w, b)) = conv(x; w·k, (b − moving_mean)·k
// + beta) exactly in real arithmetic, so a prediction can run one layer instead of two passes. The
// model's plan (model.cpp) finds the candidates; Model::forward applies a fold only when it does not
// train, folding is on, the convolution's output has no reader but the BatchNormalization, and that
// layer is called nowhere else. The folded weights are recomputed from the layers' current weights on
// every call, so set_weights, load_weights and training between predictions are always seen.
#pragma once

#include "graph.hpp"

#include <lamina/tensor.hpp>

#include <memory>
#include <mutex>
#include <optional>

namespace lamina {

// One Conv2D/Dense call whose output a BatchNormalization over the last axis reads.
struct BatchNormFold {
  size_t conv_step = 0, bn_step = 0;  // in the plan
  std::shared_ptr<graph::Node> conv, bn;
  double epsilon = 1e-3;
  // The convolution with a bias, built lazily on first use; it runs with the folded weights.
  mutable std::once_flag made;
  mutable std::shared_ptr<Layer> folded;
};

// Whether folding is on: LAMINA_FOLD_BATCH_NORM=0 turns it off (read on every call).
bool batch_norm_folding_enabled();
// The fold of `bn` into `conv` when their layers and configs allow it (Conv2D or Dense with a linear
// activation, channels last; BatchNormalization over the last axis); the steps are left to the caller.
std::unique_ptr<BatchNormFold> plan_batch_norm_fold(const std::shared_ptr<graph::Node>& conv,
                                                    const std::shared_ptr<graph::Node>& bn);
// Whether the BatchNormalization is called only once, in any model (a shared one is never folded).
bool called_once(const Layer& layer);
// BN(conv(input)) in one call of the convolution with folded weights.
Tensor run_batch_norm_fold(const BatchNormFold& fold, const Tensor& input, uint64_t seed);

}  // namespace lamina
