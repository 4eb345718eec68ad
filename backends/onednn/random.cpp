// dropout_mask: y[i] = 1/(1-rate) if u(seed, i) >= rate else 0.
//
// u is a counter-based hash (splitmix64's finaliser over seed + (i+1)·golden ratio), so every
// element is independent of the others: the loop parallelises freely, and the mask is the same on
// every backend and thread count, bit for bit.
#include <cstdint>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

inline double uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 40) / double(1 << 24);
}

// The shape comes from the output; an input, when the core passes one, only gave that shape.
LAMINA_KERNEL(dropout_mask_kernel) {
  expect_views(args, "dropout_mask", 0, 1, /*extra_inputs_ok=*/true);
  const double rate = args.attrs.get_float("rate", 0.0);
  if (!(rate >= 0.0 && rate < 1.0))
    throw sdk::Error("dropout_mask on onednn: rate must be in [0, 1), got " + std::to_string(rate));
  const uint64_t seed = uint64_t(args.attrs.get_int("seed", 0));
  const float keep = float(1.0 / (1.0 - rate));
  float* y = out_data(args.outputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = uniform(seed, uint64_t(i)) >= rate ? keep : 0.f;
}

}  // namespace

void add_random_kernels(std::vector<lamina_kernel>& kernels) {
  kernels.push_back({"dropout_mask", dropout_mask_kernel});
}

}  // namespace lamina::onednn
