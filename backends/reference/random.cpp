// Dropout masks from a counter-based hash, so that every backend draws the same mask for a seed.
#include "kernels.hpp"

namespace lamina::reference {
namespace {

// u(seed, i) in [0, 1) as docs/ops.md defines it: splitmix64's finaliser over seed + (i+1)·golden.
double uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 40) / 16777216.0;  // 2^24
}

}  // namespace

REFERENCE_KERNEL(dropout_mask) {
  // y is any shape; y[i] = 1/(1-rate) where u(seed, i) >= rate, else 0, i the row-major index.
  // The op takes no inputs, but callers may pass the tensor the mask is for; its shape must be y's.
  if (args.n_inputs == 1) {
    expect_arity(args, {"like"}, {"y"});
    expect_same_shape(args.inputs[0], "like", args.outputs[0], "y");
  } else {
    expect_arity(args, {}, {"y"});
  }
  args.attrs.need("rate");
  args.attrs.need("seed");
  const double rate = args.attrs.get_float("rate", 0.0);
  if (!(rate >= 0.0 && rate <= 1.0)) throw sdk::Error("rate must be in [0, 1], got " + std::to_string(rate));
  const uint64_t seed = uint64_t(args.attrs.get_int("seed", 0));
  // With rate 1 nothing is kept, and the scale is never used.
  const float keep = rate < 1.0 ? float(1.0 / (1.0 - rate)) : 0.0f;
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = uniform(seed, uint64_t(i)) >= rate ? keep : 0.0f;
}

}  // namespace lamina::reference
