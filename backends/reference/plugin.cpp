// The reference backend's entry points and its table: plain single-threaded C++ loops that
// accumulate in double. It is the oracle the other backends are tested against, and the fallback
// that runs anywhere.
#include <lamina/sdk/layout.hpp>

#include "kernels.hpp"

#include <string>

namespace lamina::reference {
namespace {

// One entry per op in docs/ops.md.
const lamina_kernel kKernels[] = {
    {"copy", copy},
    {"fill", fill},
    {"neg", neg},
    {"exp", exp},
    {"log", log},
    {"sqrt", sqrt},
    {"square", square},
    {"relu", relu},
    {"sigmoid", sigmoid},
    {"tanh", tanh},
    {"scale", scale},
    {"clip", clip},
    {"relu_backward", relu_backward},
    {"sigmoid_backward", sigmoid_backward},
    {"tanh_backward", tanh_backward},
    {"clip_backward", clip_backward},
    {"add", add},
    {"sub", sub},
    {"mul", mul},
    {"div", div},
    {"reduce_sum", reduce_sum},
    {"softmax", softmax},
    {"log_softmax", log_softmax},
    {"mean_squared_error", mean_squared_error},
    {"mean_squared_error_backward", mean_squared_error_backward},
    {"softmax_cross_entropy", softmax_cross_entropy},
    {"softmax_cross_entropy_backward", softmax_cross_entropy_backward},
    {"matmul", matmul},
    {"matmul_bias", matmul_bias},
    {"conv2d", conv2d},
    {"conv2d_bias", conv2d_bias},
    {"conv2d_backward_data", conv2d_backward_data},
    {"conv2d_backward_filter", conv2d_backward_filter},
    {"conv2d_backward_filter_bias", conv2d_backward_filter_bias},
    {"max_pool2d", max_pool2d},
    {"max_pool2d_backward", max_pool2d_backward},
    {"avg_pool2d", avg_pool2d},
    {"avg_pool2d_backward", avg_pool2d_backward},
    {"dropout_mask", dropout_mask},
    // layout ops: the SDK's plain host copies
    {"concat", sdk::layout::host::concat},
    {"slice", sdk::layout::host::slice},
    {"slice_backward", sdk::layout::host::slice_backward},
    {"pad", sdk::layout::host::pad},
    {"transpose", sdk::layout::host::transpose},
    {"sgd_update", sgd_update},
    {"adadelta_update", adadelta_update},
    {"adam_update", adam_update},
    {"rmsprop_update", rmsprop_update},
};

// Always usable, but ranked below every optimised backend: it is chosen only when nothing else is.
int32_t score(std::string& /*why*/) {
  return 10;
}

void init(const lamina_host* host) {
  static const lamina_backend backend = {
      sizeof(lamina_backend),
      "reference",
      "CPU (plain C++ loops, double accumulation)",
      nullptr,  // self: the backend keeps no state
      1,        // host_memory
      alloc,
      release,
      copy_in,
      copy_out,
      synchronize,
      int32_t(sizeof(kKernels) / sizeof(kKernels[0])),
      kKernels,
  };
  lamina_error error{};
  sdk::check(host->register_backend(host->self, &backend, &error), error);
}

}  // namespace
}  // namespace lamina::reference

LAMINA_PLUGIN("reference", "0.1.0", LAMINA_KIND_BACKEND,
              "Reference backend: plain C++ loops accumulating in double; the oracle other backends are "
              "tested against",
              lamina::reference::init, lamina::reference::score)
