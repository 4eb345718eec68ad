// dropout_mask and random_normal: a counter-based hash of (seed, element index), so that every backend, and every run,
// draws the same mask for a seed (docs/ops.md; lamina/sdk/dropout.hpp, compiled here as device code).
#include <lamina/sdk/dropout.hpp>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// y[i] = keep where u(seed, i) >= rate, else 0; i is the row-major index.
__global__ void dropout_kernel(float* __restrict__ y, int64_t n, uint64_t seed, double rate, float keep) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = sdk::dropout_uniform(seed, uint64_t(i)) >= rate ? keep : 0.0f;
}

CUDNN_KERNEL(op_dropout_mask, "dropout_mask") {
  // y any shape; y[i] = 1/(1-rate) where u(seed, i) >= rate, else 0
  const DropoutArgs d = dropout_args(args);
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  dropout_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.outputs[0]), n, d.seed, d.rate, d.keep);
}

// y[i] = mean + stddev · n(seed, i), in double as the reference computes it.
__global__ void normal_kernel(float* __restrict__ y, int64_t n, uint64_t seed, double mean, double stddev) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = float(mean + stddev * sdk::normal_draw(seed, uint64_t(i)));
}

CUDNN_KERNEL(op_random_normal, "random_normal") {
  const RandomNormalArgs r = random_normal_args(args);
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  normal_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.outputs[0]), n, r.seed, r.mean, r.stddev);
}

}  // namespace
}  // namespace lamina::cudnn
