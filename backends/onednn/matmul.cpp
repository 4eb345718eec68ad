// matmul: y(M,N) = op(a)(M,K) · op(b)(K,N), op = transpose when the attribute says so; matmul_bias
// adds a bias row and applies an activation.
//
// Transposes are never materialised: a transposed operand is the same buffer described with
// swapped strides, which oneDNN's matmul reads directly.
//
// Products under kSmallMacs multiply-adds are loops here instead: a oneDNN matmul call costs about a
// microsecond before its first multiplication (16x2 · 2x100 took 1.06 µs through oneDNN on the dev
// machine, one core), more than such a product takes, and the seed MLP's narrow layers and their
// gradients are all this small.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <immintrin.h>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;

struct MatmulEntry {
  dnnl::matmul primitive;
  memory a, b, y, bias;
  Scratchpad scratchpad;
  std::unordered_map<int, memory> args;  // built once: the memories are rebound on every call
};

// Logical (rows, cols) over a row-major buffer that holds it, or its transpose.
memory::desc operand_desc(int64_t rows, int64_t cols, bool transposed) {
  memory::dims strides = transposed ? memory::dims{1, rows} : memory::dims{cols, 1};
  return memory::desc({rows, cols}, memory::data_type::f32, strides);
}

constexpr int64_t kSmallMacs = 1 << 14;
constexpr int64_t kTransposedRows = 16;

// y (M,N) = op(a)·op(b) for small products, with op(a)(i,k) = a[i·a_i + k·a_k] and op(b)(k,j) =
// b[k·b_k + j·b_j]. Each loop order keeps its innermost loop on contiguous memory so that it
// vectorises: rows of y from rows of b, dot products along k, or columns of y from columns of a.
LAMINA_INLINE void small_matmul_body(const float* __restrict a, const float* __restrict b,
                                     float* __restrict y, int64_t M, int64_t N, int64_t K, int64_t a_i,
                                     int64_t a_k, int64_t b_k, int64_t b_j) {
  if (b_j == 1 && N >= 8) {  // y(i,:) = Σ_k a(i,k) · b(k,:)
    for (int64_t i = 0; i < M; ++i) {
      float* yr = y + i * N;
      std::fill(yr, yr + N, 0.f);
      for (int64_t k = 0; k < K; ++k) {
        const float aik = a[i * a_i + k * a_k];
        const float* br = b + k * b_k;
        for (int64_t j = 0; j < N; ++j) yr[j] += aik * br[j];
      }
    }
  } else if (a_k == 1 && b_k == 1) {  // y(i,j) = a(i,:) · b(:,j), both contiguous along k
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float* ar = a + i * a_i;
        const float* bc = b + j * b_j;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t k = 0; k < K; ++k) sum += ar[k] * bc[k];
        y[i * N + j] = sum;
      }
  } else if (a_i == 1 && M <= 256) {  // y(:,j) = Σ_k a(:,k) · b(k,j), a's columns contiguous
    float column[256];
    for (int64_t j = 0; j < N; ++j) {
      std::fill(column, column + M, 0.f);
      for (int64_t k = 0; k < K; ++k) {
        const float bkj = b[k * b_k + j * b_j];
        const float* ac = a + k * a_k;
        for (int64_t i = 0; i < M; ++i) column[i] += ac[i] * bkj;
      }
      for (int64_t i = 0; i < M; ++i) y[i * N + j] = column[i];
    }
  } else {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float sum = 0.f;
        for (int64_t k = 0; k < K; ++k) sum += a[i * a_i + k * a_k] * b[k * b_k + j * b_j];
        y[i * N + j] = sum;
      }
  }
}
LAMINA_VECTOR_DISPATCH(void, small_matmul,
                       (const float* __restrict a, const float* __restrict b, float* __restrict y, int64_t M,
                        int64_t N, int64_t K, int64_t a_i, int64_t a_k, int64_t b_k, int64_t b_j),
                       (a, b, y, M, N, K, a_i, a_k, b_k, b_j))

// Register-blocked products for the products between kSmallMacs and kParallelMacs with b not
// transposed, which run on one thread: y (M,N) = op(a)·b, b (K,N) row-major. A block of R rows of y
// by two vectors of columns (the last one masked at the edge) accumulates in registers over all of
// K, broadcasting a(i,k) and loading b's row k: 8 rows × 32 columns in 16 of AVX-512's 32
// registers, 6 rows × 16 columns in 12 of AVX2's 16. On the dev machine (AVX-512, one core) the seed
// MLP's 16x100 · 100x100 took 3.4 µs this way against 3.9 µs in oneDNN's matmul, plus oneDNN's
// fixed cost per call near a microsecond. (Wider blocks are slower with GCC 12, which then keeps
// the accumulators in memory.) Larger products go to oneDNN, which packs its operands and splits
// the work over threads; so do transposed b with many rows, which this loop would have to copy
// first.
namespace blocked {

// The block for every instruction set: R (1..kRows) rows of y by C (1 or 2) vectors of columns,
// `width` (1..2·kLanes) columns in all. Each instruction set's struct gives the vector type V, the
// mask type of the last vector and its operations (always inlined, compiled for its own target),
// and expands this macro with the target. The accumulators are named variables, not an array:
// GCC 12 keeps an array of them in memory, storing all of them on every step of k, which made this
// loop 2.5x slower.
#define LAMINA_BLOCK_ROW(r)                                  \
  if constexpr (R > r) {                                     \
    const V av = broadcast(a[r * a_i + k * a_k]);            \
    acc##r##0 = fma(av, b0, acc##r##0);                      \
    if constexpr (C > 1) acc##r##1 = fma(av, b1, acc##r##1); \
  }
#define LAMINA_STORE_ROW(r)                                \
  if constexpr (R > r) {                                   \
    if constexpr (C > 1) {                                 \
      store(y + r * ldy, acc##r##0);                       \
      if constexpr (Masked)                                \
        store_last(y + r * ldy + kLanes, acc##r##1, last); \
      else                                                 \
        store(y + r * ldy + kLanes, acc##r##1);            \
    } else {                                               \
      if constexpr (Masked)                                \
        store_last(y + r * ldy, acc##r##0, last);          \
      else                                                 \
        store(y + r * ldy, acc##r##0);                     \
    }                                                      \
  }
#define LAMINA_BLOCK_FUNCTION(TARGET)                                                                   \
  template <int R, int C, bool Masked>                                                                  \
  __attribute__((target(TARGET))) static void block(const float* a, int64_t a_i, int64_t a_k,           \
                                                    const float* b, int64_t ldb, float* y, int64_t ldy, \
                                                    int64_t K, int64_t width) {                         \
    static_assert(R >= 1 && R <= kRows && (C == 1 || C == 2));                                          \
    const Mask last = mask(width);                                                                      \
    const V zero = setzero();                                                                           \
    V acc00 = zero, acc01 = zero, acc10 = zero, acc11 = zero, acc20 = zero, acc21 = zero, acc30 = zero, \
      acc31 = zero, acc40 = zero, acc41 = zero, acc50 = zero, acc51 = zero, acc60 = zero, acc61 = zero, \
      acc70 = zero, acc71 = zero;                                                                       \
    for (int64_t k = 0; k < K; ++k) {                                                                   \
      const float* bk = b + k * ldb;                                                                    \
      const V b0 = C > 1 || !Masked ? load(bk) : load_last(bk, last);                                   \
      const V b1 = C == 1 ? b0 : Masked ? load_last(bk + kLanes, last) : load(bk + kLanes);             \
      LAMINA_BLOCK_ROW(0)                                                                               \
      LAMINA_BLOCK_ROW(1)                                                                               \
      LAMINA_BLOCK_ROW(2)                                                                               \
      LAMINA_BLOCK_ROW(3)                                                                               \
      LAMINA_BLOCK_ROW(4)                                                                               \
      LAMINA_BLOCK_ROW(5)                                                                               \
      LAMINA_BLOCK_ROW(6)                                                                               \
      LAMINA_BLOCK_ROW(7)                                                                               \
    }                                                                                                   \
    LAMINA_STORE_ROW(0)                                                                                 \
    LAMINA_STORE_ROW(1)                                                                                 \
    LAMINA_STORE_ROW(2)                                                                                 \
    LAMINA_STORE_ROW(3)                                                                                 \
    LAMINA_STORE_ROW(4)                                                                                 \
    LAMINA_STORE_ROW(5)                                                                                 \
    LAMINA_STORE_ROW(6)                                                                                 \
    LAMINA_STORE_ROW(7)                                                                                 \
  }

#define LAMINA_AVX512 __attribute__((target(LAMINA_AVX512_TARGET), always_inline)) static inline
struct Avx512 {
  static constexpr int kRows = 8;
  static constexpr int64_t kLanes = 16;
  using V = __m512;
  using Mask = __mmask16;
  LAMINA_AVX512 Mask mask(int64_t width) {
    return Mask(width % 16 == 0 ? 0xFFFF : (1u << (width % 16)) - 1u);
  }
  LAMINA_AVX512 V setzero() { return _mm512_setzero_ps(); }
  LAMINA_AVX512 V broadcast(float s) { return _mm512_set1_ps(s); }
  LAMINA_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  LAMINA_AVX512 V load(const float* p) { return _mm512_loadu_ps(p); }
  LAMINA_AVX512 V load_last(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  LAMINA_AVX512 void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  LAMINA_AVX512 void store_last(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  LAMINA_BLOCK_FUNCTION(LAMINA_AVX512_TARGET)
};
#undef LAMINA_AVX512

#define LAMINA_AVX2 __attribute__((target(LAMINA_AVX2_TARGET), always_inline)) static inline
struct Avx2 {
  static constexpr int kRows = 6;
  static constexpr int64_t kLanes = 8;
  using V = __m256;
  struct Mask {
    __m256i bits;  // lanes to load: all bits set
    int lanes;
  };
  LAMINA_AVX2 Mask mask(int64_t width) {
    const int lanes = width % 8 == 0 ? 8 : int(width % 8);
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), lanes};
  }
  LAMINA_AVX2 V setzero() { return _mm256_setzero_ps(); }
  LAMINA_AVX2 V broadcast(float s) { return _mm256_set1_ps(s); }
  LAMINA_AVX2 V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  LAMINA_AVX2 V load(const float* p) { return _mm256_loadu_ps(p); }
  LAMINA_AVX2 V load_last(const float* p, Mask m) { return _mm256_maskload_ps(p, m.bits); }
  LAMINA_AVX2 void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  // through the stack rather than vmaskmovps, which AMD's Zen cores run slowly as a store
  LAMINA_AVX2 void store_last(float* p, V v, Mask m) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    for (int i = 0; i < m.lanes; ++i) p[i] = lanes[i];
  }
  LAMINA_BLOCK_FUNCTION(LAMINA_AVX2_TARGET)
};
#undef LAMINA_AVX2
#undef LAMINA_BLOCK_FUNCTION
#undef LAMINA_BLOCK_ROW
#undef LAMINA_STORE_ROW

// R rows of y, columns [0, width) with width <= 2·kLanes; fewer rows than Isa::kRows go down to the
// block of exactly that many.
template <class Isa, int R>
void rows(int64_t count, const float* a, int64_t a_i, int64_t a_k, const float* b, int64_t ldb, float* y,
          int64_t ldy, int64_t K, int64_t width) {
  if constexpr (R > 1) {
    if (count < R) return rows<Isa, R - 1>(count, a, a_i, a_k, b, ldb, y, ldy, K, width);
  }
  // Masked loads and stores only where the panel is ragged: AMD's Zen cores take many cycles for a
  // masked AVX2 store (the weight gradient's K = 16 blocks spent a third of their time in them).
  if (width == 2 * Isa::kLanes)
    Isa::template block<R, 2, false>(a, a_i, a_k, b, ldb, y, ldy, K, width);
  else if (width > Isa::kLanes)
    Isa::template block<R, 2, true>(a, a_i, a_k, b, ldb, y, ldy, K, width);
  else if (width == Isa::kLanes)
    Isa::template block<R, 1, false>(a, a_i, a_k, b, ldb, y, ldy, K, width);
  else
    Isa::template block<R, 1, true>(a, a_i, a_k, b, ldb, y, ldy, K, width);
}

template <class Isa>
void matmul_with(const float* a, int64_t a_i, int64_t a_k, const float* b, float* y, int64_t M, int64_t N,
                 int64_t K) {
  constexpr int64_t kPanel = 2 * Isa::kLanes;
  for (int64_t j = 0; j < N;
       j += kPanel) {  // a panel of b's columns stays in L1 while every row block uses it
    const int64_t width = std::min(kPanel, N - j);
    for (int64_t i = 0; i < M; i += Isa::kRows)
      rows<Isa, Isa::kRows>(M - i, a + i * a_i, a_i, a_k, b + j, N, y + i * N + j, N, K, width);
  }
}

bool available() {
  return vector_isa() != VectorIsa::baseline;
}

// y (M,N) = op(a)·b, op(a)(i,k) = a[i·a_i + k·a_k], b (K,N) row-major.
void matmul(const float* a, int64_t a_i, int64_t a_k, const float* b, float* y, int64_t M, int64_t N,
            int64_t K) {
  if (vector_isa() == VectorIsa::avx512)
    matmul_with<Avx512>(a, a_i, a_k, b, y, M, N, K);
  else
    matmul_with<Avx2>(a, a_i, a_k, b, y, M, N, K);
}

// dst (cols, rows) = srcᵀ, src (rows, cols) with rows ld_src apart, dst's rows ld_dst apart: 8x8
// tiles transposed in registers (unpack, shuffle, swap of 128-bit halves), the ragged edges by
// element. Strided copies by element cost the MLP's transposed products about a fifth of their
// time.
__attribute__((target(LAMINA_AVX2_TARGET))) void transpose(const float* src, int64_t rows, int64_t cols,
                                                           int64_t ld_src, float* dst, int64_t ld_dst) {
  int64_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      const float* s = src + i * ld_src + j;
      __m256 r[8], t[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + k * ld_src);
      for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      }
      for (int k = 0; k < 8; k += 4) {
        r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* d = dst + j * ld_dst + i;
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(d + k * ld_dst, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
        _mm256_storeu_ps(d + (k + 4) * ld_dst, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
      }
    }
    for (; j < cols; ++j)
      for (int64_t k = i; k < i + 8; ++k) dst[j * ld_dst + k] = src[k * ld_src + j];
  }
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

// y (M,N) = op(a)·bᵀ with b (N,K) row-major and few rows M: the same loop computes yᵀ = b·op(a)ᵀ,
// b's rows broadcast and op(a)ᵀ's rows (a's columns, first copied contiguous) as the vectors, then
// transposes yᵀ into y. The copies move M·(K+N) floats against M·N·K multiply-adds.
void matmul_transposed_b(const float* a, int64_t a_i, int64_t a_k, const float* b, float* y, int64_t M,
                         int64_t N, int64_t K) {
  thread_local std::vector<float> a_t, y_t;
  y_t.resize(size_t(N * M));
  // op(a)ᵀ (K,M) row-major: a itself when op(a) is the transpose of a row-major (K,M), else a
  // (M,K) row-major (a_k == 1) transposed
  const float* a_rows = a;
  if (!(a_i == 1 && a_k == M)) {
    a_t.resize(size_t(K * M));
    transpose(a, M, K, a_i, a_t.data(), M);
    a_rows = a_t.data();
  }
  matmul(b, K, 1, a_rows, y_t.data(), N, M, K);
  transpose(y_t.data(), N, M, M, y, N);
}

}  // namespace blocked

// y = activation(y + bias) over the rows of y (M,N); bias may be null. The activation runs over y as
// one flat array, so that only its last few elements miss a full vector.
LAMINA_INLINE void add_bias_activate_body(float* __restrict y, const float* __restrict bias, int64_t M,
                                          int64_t N, sdk::Activation act) {
  if (bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y[i * N + j] += bias[j];
  const int64_t n = M * N;
  switch (act) {
    case sdk::Activation::relu:
      for (int64_t k = 0; k < n; ++k) y[k] = std::max(y[k], 0.f);
      break;
    case sdk::Activation::sigmoid:
      for (int64_t k = 0; k < n; ++k) y[k] = vector_sigmoid(y[k]);
      break;
    case sdk::Activation::tanh:
      for (int64_t k = 0; k < n; ++k) y[k] = vector_tanh(y[k]);
      break;
    case sdk::Activation::linear:
      break;
  }
}
LAMINA_VECTOR_DISPATCH(void, add_bias_activate,
                       (float* __restrict y, const float* __restrict bias, int64_t M, int64_t N,
                        sdk::Activation act),
                       (y, bias, M, N, act))

// matmul (a, b → y) and matmul_bias (a, b, bias → y = activation(op(a)·op(b) + bias)), the bias
// and activation applied by oneDNN as the result is written.
void matmul_forward(const sdk::KernelArgs& args, const char* op, bool with_bias) {
  expect_views(args, with_bias ? 3 : 2, 1);
  const lamina_view& va = args.inputs[0];
  const lamina_view& vb = args.inputs[1];
  const lamina_view& vy = args.outputs[0];
  const MatmulGeometry g = matmul_geometry(args.attrs, va, vb, vy);
  const int64_t M = g.m, K = g.k, N = g.n;
  const bool ta = g.transpose_a, tb = g.transpose_b;
  sdk::Activation act = with_bias ? sdk::read_activation(args.attrs) : sdk::Activation::linear;
  if (with_bias) expect_vector(args.inputs[2], "bias", N, "column of y");
  if (M == 0 || N == 0) return;
  float* y = out_data(vy);
  if (M * N * K < kSmallMacs) {  // K = 0 included: the result is the activated bias, or zeros
    small_matmul(in_data(va), in_data(vb), y, M, N, K, ta ? 1 : K, ta ? M : 1, tb ? 1 : N, tb ? K : 1);
    add_bias_activate(y, with_bias ? in_data(args.inputs[2]) : nullptr, M, N, act);
    return;
  }
  if (M * N * K < kParallelMacs && blocked::available() && (!tb || M <= kTransposedRows)) {
    if (tb)
      blocked::matmul_transposed_b(in_data(va), ta ? 1 : K, ta ? M : 1, in_data(vb), y, M, N, K);
    else
      blocked::matmul(in_data(va), ta ? 1 : K, ta ? M : 1, in_data(vb), y, M, N, K);
    add_bias_activate(y, with_bias ? in_data(args.inputs[2]) : nullptr, M, N, act);
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  SerialScope serial(M * N * K < kParallelMacs);
  with_dnnl(args, [&] {
    CacheKey key(op);
    key.add(M).add(N).add(K).add(int64_t(ta)).add(int64_t(tb)).add(int64_t(act));
    auto entry = be.cache.get<MatmulEntry>(key, [&] {
      memory::desc md_a = operand_desc(M, K, ta), md_b = operand_desc(K, N, tb),
                   md_y = operand_desc(M, N, false);
      auto e = std::make_shared<MatmulEntry>();
      if (with_bias) {
        memory::desc md_bias = operand_desc(1, N, false);  // one row, broadcast over M
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md_a, md_b, md_bias, md_y),
                                        user_scratchpad(activation_attr(act)), be.engine);
        e->primitive = dnnl::matmul(pd);
        e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
        e->bias = unbound_memory(md_bias, be.engine);
        e->args.emplace(DNNL_ARG_BIAS, e->bias);
      } else {
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md_a, md_b, md_y), user_scratchpad(), be.engine);
        e->primitive = dnnl::matmul(pd);
        e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      }
      e->a = unbound_memory(md_a, be.engine);
      e->b = unbound_memory(md_b, be.engine);
      e->y = unbound_memory(md_y, be.engine);
      e->args.emplace(DNNL_ARG_SRC, e->a);
      e->args.emplace(DNNL_ARG_WEIGHTS, e->b);
      e->args.emplace(DNNL_ARG_DST, e->y);
      return e;
    });
    bind(entry->a, va.data);
    bind(entry->b, vb.data);
    bind(entry->y, y);
    if (with_bias) bind(entry->bias, args.inputs[2].data);
    entry->scratchpad.add_to(be, entry->args);
    entry->primitive.execute(be.stream, entry->args);
    be.stream.wait();
  });
}

ONEDNN_KERNEL(matmul_kernel, "matmul") {
  matmul_forward(args, "matmul", false);
}
ONEDNN_KERNEL(matmul_bias_kernel, "matmul_bias") {
  matmul_forward(args, "matmul_bias", true);
}

}  // namespace
}  // namespace lamina::onednn
