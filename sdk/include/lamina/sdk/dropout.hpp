// The dropout hash u(seed, i) of docs/ops.md, the one definition every backend draws its masks from,
// so that a seed gives the same mask, bit for bit, on every backend and thread count. It compiles
// as plain C++ and as CUDA device code (nvcc defines __CUDACC__); it uses nothing from std::.
// random_normal's draws n(seed, i) come from the same hash.
#pragma once

#include <math.h>
#include <stdint.h>

#ifndef LAMINA_HOST_DEVICE
#ifdef __CUDACC__
#define LAMINA_HOST_DEVICE __host__ __device__
#else
#define LAMINA_HOST_DEVICE
#endif
#endif

namespace lamina::sdk {

// The 24 random bits of element i: splitmix64's finaliser over seed + (i+1)·golden ratio, mod 2^64,
// shifted right by 40.
LAMINA_HOST_DEVICE inline uint64_t dropout_bits(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z >> 40;
}

// u(seed, i) = bits / 2^24, in [0, 1).
LAMINA_HOST_DEVICE inline double dropout_uniform(uint64_t seed, uint64_t i) {
  return double(dropout_bits(seed, i)) / 16777216.0;  // 2^24
}

// u >= rate  <=>  bits >= ceil(rate·2^24): rate·2^24 is exact in double, so this integer threshold
// decides exactly as the real-valued test, without a conversion per element.
LAMINA_HOST_DEVICE inline uint64_t dropout_threshold(double rate) {
  const double scaled = rate * 16777216.0;
  const uint64_t whole = uint64_t(scaled);
  return double(whole) < scaled ? whole + 1 : whole;
}

// n(seed, i), a standard normal draw (random_normal): Box–Muller over two uniforms of the hash,
// sqrt(−2 ln(1 − u(seed, 2i))) · cos(2π u(seed, 2i+1)). 1 − u is in (0, 1], so the logarithm is
// finite; with 24-bit uniforms |n| ≤ 5.77.
LAMINA_HOST_DEVICE inline double normal_draw(uint64_t seed, uint64_t i) {
  const double u1 = dropout_uniform(seed, 2 * i), u2 = dropout_uniform(seed, 2 * i + 1);
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

}  // namespace lamina::sdk
