// Dropout masks and normal draws from a counter-based hash, so that every backend draws the same
// values for a seed.
#include "kernels.hpp"

namespace lamina::reference {

REFERENCE_KERNEL(dropout_mask) {
  // y is any shape; y[i] = 1/(1-rate) where u(seed, i) >= rate, else 0, i the row-major index
  const DropoutArgs d = dropout_args(args);
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = dropout_uniform(d.seed, uint64_t(i)) >= d.rate ? d.keep : 0.0f;
}

REFERENCE_KERNEL(random_normal) {
  // y is any shape; y[i] = mean + stddev · n(seed, i), i the row-major index
  const RandomNormalArgs r = random_normal_args(args);
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = float(r.mean + r.stddev * normal_draw(r.seed, uint64_t(i)));
}

}  // namespace lamina::reference
