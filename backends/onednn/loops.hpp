// Building blocks of the backend's own loops: splitting a range over OpenMP threads only when it is
// worth a parallel region, per-CPU code generation for the hot loops, and a vectorisable exp.
#pragma once

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace lamina::onednn {

// The widest vectors the backend's own kernels use: what the CPU has, capped as oneDNN's own kernels
// are by ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA (read through oneDNN, plugin.cpp):
// ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 machine runs the AVX2 code, as the tests do to cover it.
enum class VectorIsa { baseline, avx2, avx512 };
VectorIsa vector_isa();

// What the AVX-512 and AVX2 code may use. The AVX-512 set is oneDNN's avx512_core, which
// vector_isa() requires; the AVX2 set needs AVX2 and FMA, which it checks.
#define LAMINA_AVX512_TARGET "avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx2,fma"
#define LAMINA_AVX2_TARGET "avx2,fma"

// Inlined wherever it is called, compiled for the caller's instruction set.
#define LAMINA_INLINE inline __attribute__((always_inline))
#define LAMINA_INLINE_LAMBDA __attribute__((always_inline))

// Defines `ret name params` to run `name##_body` (a LAMINA_INLINE function with the same
// parameters; `args` names them) compiled three times, for AVX-512, for AVX2 + FMA and for baseline
// x86-64 (where loops get 4-wide SSE and no FMA), as vector_isa() picks. The choice is made here,
// not by the compilers' target_clones: clang 14 resolves those to the baseline copy on every CPU,
// and they would ignore oneDNN's cap.
#define LAMINA_VECTOR_DISPATCH(ret, name, params, args)                           \
  __attribute__((target(LAMINA_AVX512_TARGET))) static ret name##_avx512 params { \
    return name##_body args;                                                      \
  }                                                                               \
  __attribute__((target(LAMINA_AVX2_TARGET))) static ret name##_avx2 params {     \
    return name##_body args;                                                      \
  }                                                                               \
  static ret name##_baseline params {                                             \
    return name##_body args;                                                      \
  }                                                                               \
  ret name params {                                                               \
    switch (vector_isa()) {                                                       \
      case VectorIsa::avx512:                                                     \
        return name##_avx512 args;                                                \
      case VectorIsa::avx2:                                                       \
        return name##_avx2 args;                                                  \
      default:                                                                    \
        return name##_baseline args;                                              \
    }                                                                             \
  }

// Small work never enters an OpenMP region: libgomp builds a team, with a heap allocation, even for
// a region whose `if` clause turns it off, which costs more than a loop over a few thousand floats.

// body(i) for i in [0, n): split over the OpenMP threads when `parallel`, else a plain loop.
template <class Body>
void for_each_index(int64_t n, bool parallel, Body&& body) {
  if (!parallel || omp_get_max_threads() == 1) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Runs body(begin, end) over [0, n): on the calling thread when n < grain, else in equal, 16-element
// aligned parts, one per OpenMP thread.
template <class Body>
void parallel_chunks(int64_t n, int64_t grain, Body&& body) {
  if (n < grain || omp_get_max_threads() == 1) {
    if (n > 0) body(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t part = ((n + threads - 1) / threads + 15) / 16 * 16;
    const int64_t begin = std::min(n, t * part), end = std::min(n, begin + part);
    if (begin < end) body(begin, end);
  }
}

// e^x in float, written so that compilers vectorise it: Cody-Waite range reduction x = n ln2 + r,
// |r| <= ln2 / 2, then a degree-6 polynomial for e^r (Cephes' expf), within 2 ulp of the exact
// value (1.3 ulp measured). n is rounded by adding 1.5·2^23, which leaves it in the sum's low bits,
// and the polynomial is evaluated in Estrin's order (three short chains joined by r²) rather than
// Horner's (six dependent multiply-adds, whose latency the out-of-order window did not hide): a
// sigmoid of 1,600 floats on one AVX2 core took 954 ns, 870 in Estrin's order, 730 with the one
// scale of vector_exp_to_88.
struct ExpParts {
  float mantissa;  // e^r, in [0.70, 1.42]
  int32_t n;       // e^x = mantissa · 2^n
};
inline ExpParts exp_parts(float x) {
  const float t = x * 1.44269504088896341f + 12582912.f;  // 1.5·2^23 + round(x log2 e)
  const float n = t - 12582912.f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  const float r2 = r * r;
  const float high =
      (1.9875691500e-4f * r + 1.3981999507e-3f) * r2 + (8.3334519073e-3f * r + 4.1665795894e-2f);
  const float p = (high * r2 + (1.6666665459e-1f * r + 5.0000001201e-1f)) * r2 + (r + 1.f);
  return {p, std::bit_cast<int32_t>(t) - 0x4B400000};
}
inline float exp2_int(int32_t n) {  // 2^n for n in [-126, 127]
  return std::bit_cast<float>((n + 127) << 23);
}

// Arguments are clamped to where the result is a normal float.
inline float vector_exp(float x) {
  x = std::min(88.3762626647949f, std::max(-87.3365478515625f, x));
  const ExpParts e = exp_parts(x);
  // n is in [-126, 128] after the clamp: the scale in two halves, for n = 128 near the top
  const int32_t half = e.n >> 1;
  return e.mantissa * exp2_int(half) * exp2_int(e.n - half);
}

// e^x with x clamped to [-87.33, 88]: one scale instead of two. For sigmoid and tanh, which reach
// 0, 1 or -1 before the clamp matters (1 / (1 + e^88) is 6e-39, a denormal).
inline float vector_exp_to_88(float x) {
  x = std::min(88.f, std::max(-87.3365478515625f, x));
  const ExpParts e = exp_parts(x);
  return e.mantissa * exp2_int(e.n);
}
inline float vector_sigmoid(float x) {
  return 1.f / (1.f + vector_exp_to_88(-x));
}
inline float vector_tanh(float x) {
  // tanh(x) = 1 - 2 / (e^{2x} + 1); for |x| small, x itself is closer than the subtraction
  if (std::abs(x) < 0x1p-12f) return x;
  return 1.f - 2.f / (vector_exp_to_88(2.f * x) + 1.f);
}

}  // namespace lamina::onednn
