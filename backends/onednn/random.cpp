// dropout_mask: y[i] = 1/(1-rate) if u(seed, i) >= rate else 0; random_normal from the same hash.
//
// u is a counter-based hash (splitmix64's finaliser over seed + (i+1)·golden ratio), so every
// element is independent of the others: the loop parallelises freely, and the mask is the same on
// every backend and thread count, bit for bit.
#include <algorithm>
#include <cstdint>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

// y[begin, end) of the mask. The hash is three 64-bit multiplies per element, which only AVX-512
// (vpmullq) vectorises; without it the loop is about 20x slower (measured 0.8 ms vs 17 ms for
// 2.4M elements on one core), so it is compiled for AVX-512 as well (LAMINA_VECTOR_DISPATCH).
LAMINA_INLINE void fill_mask_body(float* y, int64_t begin, int64_t end, uint64_t seed, uint64_t threshold,
                                  float keep) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i)
    y[i] = keep * float(sdk::dropout_bits(seed, uint64_t(i)) >= threshold);
}
LAMINA_VECTOR_DISPATCH(void, fill_mask,
                       (float* y, int64_t begin, int64_t end, uint64_t seed, uint64_t threshold, float keep),
                       (y, begin, end, seed, threshold, keep))

// The shape comes from the output; an input, when the core passes one, only gave that shape.
ONEDNN_KERNEL(dropout_mask_kernel, "dropout_mask") {
  const sdk::DropoutArgs d = sdk::dropout_args(args);
  const uint64_t seed = d.seed, threshold = d.threshold;  // bits >= threshold: u >= rate, exactly
  const float keep = d.keep;
  float* y = out_data(args.outputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  for_each_index(blocks, n > kParallelThreshold, [&](int64_t b) {
    fill_mask(y, b * kBlock, std::min(n, (b + 1) * kBlock), seed, threshold, keep);
  });
}

// random_normal: y[i] = mean + stddev · n(seed, i), Box–Muller over the same hash; a logarithm and
// a cosine per element, in blocks across the threads.
ONEDNN_KERNEL(random_normal_kernel, "random_normal") {
  const sdk::RandomNormalArgs r = sdk::random_normal_args(args);
  float* y = out_data(args.outputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  for_each_index(blocks, n > kParallelThreshold, [&](int64_t b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i)
      y[i] = float(r.mean + r.stddev * sdk::normal_draw(r.seed, uint64_t(i)));
  });
}

}  // namespace
}  // namespace lamina::onednn
