// dropout_mask: y[i] = 1/(1-rate) if u(seed, i) >= rate else 0.
//
// u is a counter-based hash (splitmix64's finaliser over seed + (i+1)·golden ratio), so every
// element is independent of the others: the loop parallelises freely, and the mask is the same on
// every backend and thread count, bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

// The 24 random bits of u(seed, i) = bits / 2^24.
inline uint64_t uniform_bits(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z >> 40;
}

// y[begin, end) of the mask. The hash is three 64-bit multiplies per element, which only AVX-512
// (vpmullq) vectorises; without it the loop is about 20x slower (measured 0.8 ms vs 17 ms for
// 2.4M elements on one core), so an AVX-512 clone is built beside the baseline one and picked at
// load time.
__attribute__((target_clones("arch=x86-64-v4", "default"))) void fill_mask(float* y, int64_t begin,
                                                                           int64_t end, uint64_t seed,
                                                                           uint64_t threshold, float keep) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) y[i] = keep * float(uniform_bits(seed, uint64_t(i)) >= threshold);
}

// The shape comes from the output; an input, when the core passes one, only gave that shape.
LAMINA_KERNEL(dropout_mask_kernel) {
  expect_views(args, "dropout_mask", 0, 1, /*extra_inputs_ok=*/true);
  const double rate = args.attrs.get_float("rate", 0.0);
  if (!(rate >= 0.0 && rate <= 1.0))
    throw sdk::Error("dropout_mask on onednn: rate must be in [0, 1], got " + std::to_string(rate));
  const uint64_t seed = uint64_t(args.attrs.get_int("seed", 0));
  const float keep = rate < 1.0 ? float(1.0 / (1.0 - rate)) : 0.f;  // rate 1 keeps nothing
  // bits / 2^24 >= rate  <=>  bits >= ceil(rate · 2^24): scaling by 2^24 is exact in double, so the
  // integer test decides exactly as the real-valued one, without a conversion per element.
  const uint64_t threshold = uint64_t(std::ceil(rate * 16777216.0));
  float* y = out_data(args.outputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  for_each_index(blocks, n > kParallelThreshold,
                 [&](int64_t b) { fill_mask(y, b * kBlock, std::min(n, (b + 1) * kBlock), seed, threshold, keep); });
}

}  // namespace

void add_random_kernels(std::vector<lamina_kernel>& kernels) {
  kernels.push_back({"dropout_mask", dropout_mask_kernel});
}

}  // namespace lamina::onednn
