// u(seed, i) of docs/ops.md, compiled for both the host (tests) and the device (dropout_mask), so
// that the mask a GPU draws is the one every other backend draws for the same seed.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define LAMINA_HOST_DEVICE __host__ __device__
#else
#define LAMINA_HOST_DEVICE
#endif

namespace lamina::cudnn {

// splitmix64's finaliser over seed + (i+1)·golden ratio, mod 2^64; the top 24 bits as a double in
// [0, 1).
LAMINA_HOST_DEVICE inline double dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 40) / 16777216.0;  // 2^24
}

}  // namespace lamina::cudnn
