// dropout_mask: a counter-based hash of (seed, element index), so that every backend, and every run,
// draws the same mask for a seed (docs/ops.md; splitmix.hpp).
#include "kernels.hpp"
#include "splitmix.hpp"

namespace lamina::cudnn {
namespace {

// y[i] = keep where u(seed, i) >= rate, else 0; i is the row-major index.
__global__ void dropout_kernel(float* __restrict__ y, int64_t n, uint64_t seed, double rate, float keep) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = dropout_uniform(seed, uint64_t(i)) >= rate ? keep : 0.0f;
}

CUDNN_KERNEL(op_dropout_mask, "dropout_mask") {
  // y any shape; the op takes no inputs, but callers may pass the tensor the mask is for
  expect_views(args, 0, 1, /*extra_inputs_ok=*/true);
  if (args.n_inputs == 1) expect_same_shape(args.inputs[0], "like", args.outputs[0], "y");
  args.attrs.need("rate");
  args.attrs.need("seed");
  const double rate = args.attrs.get_float("rate", 0.0);
  if (!(rate >= 0.0 && rate <= 1.0)) throw sdk::Error("rate must be in [0, 1], got " + std::to_string(rate));
  const uint64_t seed = uint64_t(args.attrs.get_int("seed", 0));
  // With rate 1 nothing is kept, and the scale is never used.
  const float keep = rate < 1.0 ? float(1.0 / (1.0 - rate)) : 0.0f;
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  dropout_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.outputs[0]), n, seed, rate, keep);
}

}  // namespace

void add_random_kernels(std::vector<lamina_kernel>& kernels) {
  kernels.push_back({"dropout_mask", op_dropout_mask});
}

}  // namespace lamina::cudnn
