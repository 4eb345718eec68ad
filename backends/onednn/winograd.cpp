// Winograd convolutions (winograd.hpp): transforms, the α² channel products and their threading.
//
// Layout. Channels are padded to multiples of 16 (cp, op) and processed a vector at a time (16
// with AVX-512, 8 with AVX2) along the NHWC channel dimension, so every transform is a handful of vector
// multiply-adds with constant coefficients (the matrices are constexpr: after unrolling, zero coefficients
// vanish and ±1 cost no multiplication). Tiles are taken in blocks of `block` tiles per thread: the block's
// transformed inputs V[ξ][tile][c], products M[ξ][tile][o] and the transformed kernel U[ξ][c][o]
// stay in the core's L2 cache from the input transform through the output transform.
//
// Transforms. For the α−1 finite points p (0, ±1, ±2, ±1/2) and ∞, with the evaluation matrices
// E_n (α×n; row j = 1, p_j, …, p_j^(n−1); the ∞ row picks the last coefficient):
// G = E_r, A = E_m, Bᵀ = (E_α)⁻ᵀ. Then for 1-D correlation y = Aᵀ[(G g) ⊙ (Bᵀ d)], because
// (A y')ᵀ((G g) ⊙ (Bᵀ d)) = Σ y'_i g_k d_{i+k} for every y', g and d: the trilinear form of the
// product of polynomials evaluated at the points and interpolated back (Toom–Cook, transposed).
// The same identity, read with g and y' exchanged, gives the weight gradient dg = Gᵀ[(A dy) ⊙
// (Bᵀ d)]. Each 2-D transform applies the 1-D one along rows, then along columns.
#include "winograd.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.hpp"
#include "loops.hpp"

// The vectors below only live inside functions inlined into the per-CPU copies of
// LAMINA_VECTOR_DISPATCH (each compiled for its own instruction set), never across a call: their ABI
// never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace lamina::onednn::winograd {

// ---------------------------------------------------------------------------------------------
// Mode

namespace {
Mode configured_mode = Mode::automatic;
}

Mode parse_mode(const char* text, const char* where) {
  const std::string s(text);
  if (s == "0" || s == "off" || s == "false") return Mode::off;
  if (s == "1" || s == "on" || s == "true") return Mode::on;
  if (s == "auto") return Mode::automatic;
  throw sdk::Error(std::string(where) + " is '" + s + "'; expected auto (time both and keep the faster), " +
                   "on (Winograd wherever it applies) or off (oneDNN's direct convolution only)");
}

Mode mode() {
  const char* text = std::getenv("LAMINA_WINOGRAD");
  if (text && *text) return parse_mode(text, "LAMINA_WINOGRAD");
  return configured_mode;
}

void set_configured_mode(Mode m) {
  configured_mode = m;
}

bool eligible(const sdk::ConvGeometry& g) {
  return g.plain() && g.sh == 1 && g.sw == 1 && g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.c >= 4 &&
         g.o >= 4 && g.oh >= 2 && g.ow >= 2;
}

std::vector<int> tiles(const sdk::ConvGeometry& g) {
  if (!eligible(g)) return {};
  // the larger tile first: `on` takes it
  return {4, 2};
}

int forced_tile(const std::vector<int>& tiles) {
  if (const char* text = std::getenv("LAMINA_WINOGRAD_TILE"); text && *text) {
    const int tile = std::atoi(text);
    if (std::find(tiles.begin(), tiles.end(), tile) != tiles.end()) return tile;
  }
  return tiles.front();
}

Workspace::~Workspace() {
  std::free(data_);
}

float* Workspace::get(size_t floats) {
  if (floats > floats_) {
    std::free(data_);
    floats_ = 0;
    const size_t bytes = (floats * sizeof(float) + 4095) / 4096 * 4096;
    data_ = static_cast<float*>(std::aligned_alloc(4096, bytes));
    if (!data_)
      throw sdk::Error("onednn: out of memory for the Winograd workspace (" + std::to_string(bytes) +
                       " bytes)");
    floats_ = bytes / sizeof(float);
  }
  return data_;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Transform matrices, built at compile time in double precision and rounded once to float.

template <int Rows, int Cols>
using Matrix = std::array<std::array<double, Cols>, Rows>;

constexpr double magnitude(double v) {
  return v < 0 ? -v : v;
}

// E_n for α points: row j holds p_j^k, k < n; the last row stands for ∞.
template <int A, int N>
constexpr Matrix<A, N> evaluation() {
  constexpr std::array<double, 7> finite{0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};
  static_assert(A - 1 <= int(finite.size()));
  Matrix<A, N> e{};
  for (int j = 0; j < A - 1; ++j) {
    double power = 1.0;
    for (int k = 0; k < N; ++k, power *= finite[j]) e[j][k] = power;
  }
  e[A - 1][N - 1] = 1.0;
  return e;
}

// Gauss–Jordan elimination with partial pivoting (the matrices are small and well scaled).
template <int N>
constexpr Matrix<N, N> inverse(Matrix<N, N> a) {
  Matrix<N, N> inv{};
  for (int i = 0; i < N; ++i) inv[i][i] = 1.0;
  for (int col = 0; col < N; ++col) {
    int pivot = col;
    for (int r = col + 1; r < N; ++r)
      if (magnitude(a[r][col]) > magnitude(a[pivot][col])) pivot = r;
    std::swap(a[col], a[pivot]);
    std::swap(inv[col], inv[pivot]);
    const double scale = a[col][col];
    for (int k = 0; k < N; ++k) a[col][k] /= scale, inv[col][k] /= scale;
    for (int r = 0; r < N; ++r) {
      if (r == col || a[r][col] == 0.0) continue;
      const double f = a[r][col];
      for (int k = 0; k < N; ++k) a[r][k] -= f * a[col][k], inv[r][k] -= f * inv[col][k];
    }
  }
  return inv;
}

template <int M, int R>
struct Transform {
  static constexpr int alpha = M + R - 1;
  float BT[alpha][alpha];  // Bᵀ: input tile → transformed input
  float G[alpha][R];       // kernel → transformed kernel
  float GT[R][alpha];      // Gᵀ: transformed weight gradient → weight gradient
  float A[alpha][M];       // output gradient → transformed output gradient
  float AT[M][alpha];      // transformed product → output tile
};

template <int M, int R>
constexpr Transform<M, R> make_transform() {
  constexpr int A = M + R - 1;
  Transform<M, R> t{};
  const Matrix<A, A> b = inverse<A>(evaluation<A, A>());
  const Matrix<A, R> g = evaluation<A, R>();
  const Matrix<A, M> a = evaluation<A, M>();
  for (int i = 0; i < A; ++i)
    for (int k = 0; k < A; ++k) t.BT[i][k] = float(b[k][i]);
  for (int i = 0; i < A; ++i)
    for (int k = 0; k < R; ++k) t.G[i][k] = t.GT[k][i] = float(g[i][k]);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < A; ++j) t.AT[i][j] = t.A[j][i] = float(a[j][i]);
  return t;
}

template <int M, int R>
inline constexpr Transform<M, R> kTransform = make_transform<M, R>();

// ---------------------------------------------------------------------------------------------
// L channels at a time: vectors of L = 16 floats where the CPU has AVX-512, 8 with AVX2. A vector
// type wider than the CPU's registers would not be split into registers by GCC but kept in memory,
// every operation a load and a store: 16-float vectors made the AVX2 code ten times slower than
// oneDNN's direct convolution. Channels are padded to multiples of kChannelPad either way, so the
// layout and the order of every sum are the same for both widths, and so are the results.

// (The attribute applies in a class template's member typedef; GCC drops it from an alias template.)
template <int L>
struct VectorOf {
  typedef float type __attribute__((vector_size(L * sizeof(float))));
};
template <int L>
using vec = typename VectorOf<L>::type;
static_assert(sizeof(vec<8>) == 32 && sizeof(vec<16>) == 64);
constexpr int64_t kChannelPad = 16;

template <int L>
LAMINA_INLINE vec<L> load(const float* p) {
  vec<L> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <int L>
LAMINA_INLINE void store(float* p, vec<L> v) {
  std::memcpy(p, &v, sizeof v);
}
// s in every lane, as one broadcast instruction (an L-element initializer or a scalar-vector
// operation compiles to lane-by-lane inserts or to an extra addition).
template <int L>
LAMINA_INLINE vec<L> splat(float s) {
  vec<L> v{};
  v[0] = s;
  if constexpr (L == 16)
    return __builtin_shufflevector(v, v, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  else
    return __builtin_shufflevector(v, v, 0, 0, 0, 0, 0, 0, 0, 0);
}
// dst[0, n) = src[0, n), zero up to `padded`, a vector at a time.
template <int L>
LAMINA_INLINE void copy_padded(float* dst, const float* src, int64_t n, int64_t padded) {
  int64_t i = 0;
  for (; i + L <= n; i += L) store<L>(dst + i, load<L>(src + i));
  if (i < n) {
    std::memcpy(dst + i, src + i, size_t(n - i) * sizeof(float));
    std::memset(dst + n, 0, size_t(std::min(padded, i + L) - n) * sizeof(float));
    i += L;
  }
  for (; i < padded; i += L) store<L>(dst + i, vec<L>{});
}

// sum (+)= coefficient · v, with the coefficient a compile-time constant after unrolling: zero
// terms disappear and the first term initialises the sum.
template <int L>
LAMINA_INLINE void term(vec<L>& sum, bool& first, float coefficient, vec<L> v) {
  if (coefficient == 0.f) return;
  if (first) {
    sum = coefficient == 1.f ? v : coefficient == -1.f ? -v : coefficient * v;
    first = false;
  } else if (coefficient == 1.f) {
    sum += v;
  } else if (coefficient == -1.f) {
    sum -= v;
  } else {
    sum += coefficient * v;
  }
}

// The matrices of kTransform<M, R>, by name, with their shapes.
enum class Which { BT, G, GT, A, AT };
template <int M, int R, Which L>
constexpr int rows_of = L == Which::BT || L == Which::G || L == Which::A ? M + R - 1
                        : L == Which::GT                                 ? R
                                                                         : M;
template <int M, int R, Which L>
constexpr int cols_of = L == Which::G   ? R
                        : L == Which::A ? M
                                        : M + R - 1;
template <int M, int R, Which L>
LAMINA_INLINE constexpr float coefficient(int i, int k) {
  constexpr auto& T = kTransform<M, R>;
  if constexpr (L == Which::BT) return T.BT[i][k];
  if constexpr (L == Which::G) return T.G[i][k];
  if constexpr (L == Which::GT) return T.GT[i][k];
  if constexpr (L == Which::A) return T.A[i][k];
  return T.AT[i][k];
}

// The points come in pairs ±p, and the matrices show it. Where the rows are the points (Bᵀ, G, A),
// row −p is row p with its odd-indexed coefficients negated: both rows come from the even and the
// odd partial sums of row p, as E + O and E − O. Where the columns are the points (Aᵀ, Gᵀ), column
// −p is column p negated in the odd-indexed rows: the pair's two inputs are first combined into
// their sum and difference, which every row then takes once. Either way a pair costs half the
// multiply-adds. The pairs are found at compile time from the float matrices themselves, compared
// exactly; all_paired (asserted where they are used) makes sure none was missed.
template <int P, int Q>
struct Pairs {
  int partner[P > Q ? P : Q];  // the other index of the pair, or -1
  // the partner's sign: T[i'][k] = −(−1)^k T[i][k] for rows, T[k][i'] = −(−1)^k T[k][i] for columns
  bool negated[P > Q ? P : Q];
  int count = 0;
};
template <int M, int R, Which T>
constexpr Pairs<rows_of<M, R, T>, cols_of<M, R, T>> pairs(bool of_rows) {
  constexpr int P = rows_of<M, R, T>, Q = cols_of<M, R, T>;
  Pairs<P, Q> out{};
  const int n = of_rows ? P : Q, m = of_rows ? Q : P;
  auto at = [&](int index, int other) {
    return of_rows ? coefficient<M, R, T>(index, other) : coefficient<M, R, T>(other, index);
  };
  for (int i = 0; i < n; ++i) out.partner[i] = -1;
  for (int i = 0; i < n; ++i) {
    if (out.partner[i] >= 0) continue;
    for (int j = i + 1; j < n && out.partner[i] < 0; ++j) {
      if (out.partner[j] >= 0) continue;
      for (const float sign : {1.f, -1.f}) {
        bool paired = true, odd_terms = false;
        for (int k = 0; k < m; ++k) {
          const float expected = (k % 2 ? -sign : sign) * at(i, k);
          paired = paired && at(j, k) == expected;
          odd_terms = odd_terms || (k % 2 && at(i, k) != 0.f);
        }
        if (paired && odd_terms) {
          out.partner[i] = j, out.partner[j] = i, out.negated[j] = sign < 0;
          ++out.count;
          break;
        }
      }
    }
  }
  return out;
}
template <int M, int R, Which T>
inline constexpr auto kRowPairs = pairs<M, R, T>(true);
template <int M, int R, Which T>
inline constexpr auto kColumnPairs = pairs<M, R, T>(false);
// Every matrix has (α − 2) / 2 pairs, for the points ±1, ±2, ±½ it uses, as rows or as columns.
template <int M, int R, Which T>
constexpr bool all_paired() {
  constexpr int points = M + R - 1;
  return kRowPairs<M, R, T>.count == (points - 2) / 2 || kColumnPairs<M, R, T>.count == (points - 2) / 2;
}

// The 1-D transform out_i = Σ_k T[i][k] · in_k of Q vectors into P, pairs taken together as above.
template <int L, int M, int R, Which T>
LAMINA_INLINE void transform_1d(const vec<L> (&in)[cols_of<M, R, T>], vec<L> (&out)[rows_of<M, R, T>]) {
  constexpr int P = rows_of<M, R, T>, Q = cols_of<M, R, T>;
  constexpr auto& rows = kRowPairs<M, R, T>;
  constexpr auto& columns = kColumnPairs<M, R, T>;
  static_assert(all_paired<M, R, T>());
  if constexpr (rows.count > 0) {
#pragma GCC unroll 8
    for (int i = 0; i < P; ++i) {
      const int partner = rows.partner[i];
      if (partner >= 0 && partner < i) continue;  // made with its partner
      vec<L> even{}, odd{};
      bool first_even = true, first_odd = true;
#pragma GCC unroll 8
      for (int k = 0; k < Q; k += 2) term<L>(even, first_even, coefficient<M, R, T>(i, k), in[k]);
#pragma GCC unroll 8
      for (int k = 1; k < Q; k += 2) term<L>(odd, first_odd, coefficient<M, R, T>(i, k), in[k]);
      if (first_odd) {
        out[i] = even;
      } else if (first_even) {
        out[i] = odd;
      } else {
        out[i] = even + odd;
      }
      if (partner >= 0) out[partner] = rows.negated[partner] ? odd - even : even - odd;
    }
  } else {
    // sum and difference of each pair of inputs, at the pair's first and second index
    vec<L> v[Q];
#pragma GCC unroll 8
    for (int k = 0; k < Q; ++k) {
      const int partner = columns.partner[k];
      if (partner < 0) {
        v[k] = in[k];
      } else if (partner > k) {
        v[k] = in[k] + in[partner];
        v[partner] = in[k] - in[partner];
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < P; ++i) {
      bool first = true;
      vec<L> s{};
#pragma GCC unroll 8
      for (int k = 0; k < Q; ++k) {
        const int partner = columns.partner[k];
        if (partner < 0) {
          term<L>(s, first, coefficient<M, R, T>(i, k), v[k]);
        } else if (partner > k) {
          // T[i][k]·in_k + T[i][k']·in_k' with T[i][k'] = ±(−1)^i T[i][k]: the sum or the difference
          const bool sum = (i % 2 == 0) != columns.negated[partner];
          term<L>(s, first, coefficient<M, R, T>(i, k), sum ? v[k] : v[partner]);
        }
      }
      out[i] = s;
    }
  }
}

// The 2-D transform T X Tᵀ of one vector of channels: emit(i, j, Σ_k Σ_l T[i][k] · X[k][l] · T[j][l])
// for X[k][l] at x + k·row_ld + l·ld, T (P×Q) one of kTransform's matrices: the 1-D transform down
// each column of X into a P×Q block, then along each of its rows.
// The coefficients are constants once the loops are unrolled, so zero terms vanish.
template <int L, int M, int R, Which T, class Emit>
LAMINA_INLINE void transform(const float* x, int64_t row_ld, int64_t ld, Emit&& emit) {
  constexpr int P = rows_of<M, R, T>, Q = cols_of<M, R, T>;
  vec<L> columns[Q][P];  // columns[l][i] = Σ_k T[i][k] · X[k][l]
#pragma GCC unroll 8
  for (int l = 0; l < Q; ++l) {
    vec<L> column[Q];
#pragma GCC unroll 8
    for (int k = 0; k < Q; ++k) column[k] = load<L>(x + k * row_ld + l * ld);
    transform_1d<L, M, R, T>(column, columns[l]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) {
    vec<L> row[Q], result[P];
#pragma GCC unroll 8
    for (int l = 0; l < Q; ++l) row[l] = columns[l][i];
    transform_1d<L, M, R, T>(row, result);
#pragma GCC unroll 8
    for (int j = 0; j < P; ++j) emit(i, j, result[j]);
  }
}

// Each transform, writing α×α results to v + (i·α + j)·vld, or r×r / m×m ones to `out`, reading
// cells (k, l) at k·Q·ld + l·ld (the input transform: at k·row_ld + l·ld, so that it reads an input
// tile in place):
// input tiles Bᵀ d B, kernels G g Gᵀ, output gradients A dY Aᵀ; products back to outputs Aᵀ P A
// and, for the weight gradient, to kernels Gᵀ P G.
template <int L, int M, int R>
LAMINA_INLINE void input_transform(const float* d, int64_t row_ld, int64_t ld, float* v, int64_t vld) {
  constexpr int A = M + R - 1;
  transform<L, M, R, Which::BT>(d, row_ld, ld,
                                [&](int i, int j, vec<L> s) { store<L>(v + (i * A + j) * vld, s); });
}
template <int L, int M, int R>
LAMINA_INLINE void kernel_transform(const float* g, int64_t ld, float* u, int64_t uld) {
  constexpr int A = M + R - 1;
  transform<L, M, R, Which::G>(g, R * ld, ld,
                               [&](int i, int j, vec<L> s) { store<L>(u + (i * A + j) * uld, s); });
}
template <int L, int M, int R>
LAMINA_INLINE void gradient_transform(const float* dy, int64_t ld, float* v, int64_t vld) {
  constexpr int A = M + R - 1;
  transform<L, M, R, Which::A>(dy, M * ld, ld,
                               [&](int i, int j, vec<L> s) { store<L>(v + (i * A + j) * vld, s); });
}
template <int L, int M, int R>
LAMINA_INLINE void output_transform(const float* p, int64_t ld, vec<L> (&out)[M][M]) {
  transform<L, M, R, Which::AT>(p, (M + R - 1) * ld, ld, [&](int i, int j, vec<L> s) { out[i][j] = s; });
}
template <int L, int M, int R>
LAMINA_INLINE void filter_transform(const float* p, int64_t ld, vec<L> (&out)[R][R]) {
  transform<L, M, R, Which::GT>(p, (M + R - 1) * ld, ld, [&](int i, int j, vec<L> s) { out[i][j] = s; });
}

// ---------------------------------------------------------------------------------------------
// The channel products: c (rows × cols) (+)= a (rows × K) · b (K × cols), with a(i, k) =
// a[i·a_i + k·a_k], b and c row-major; rows a multiple of Rows, cols of 16. Rows × NV vectors of c
// stay in registers for the whole sum over K.

template <int L, int Rows, int NV>
LAMINA_INLINE void micro(const float* a, int64_t a_i, int64_t a_k, const float* b, int64_t ldb, float* c,
                         int64_t ldc, int64_t K, bool accumulate) {
  vec<L> acc[Rows][NV];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = accumulate ? load<L>(c + r * ldc + v * L) : vec<L>{};
  for (int64_t k = 0; k < K; ++k) {
    vec<L> bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = load<L>(b + k * ldb + v * L);
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      const vec<L> av = splat<L>(a[r * a_i + k * a_k]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) store<L>(c + r * ldc + v * L, acc[r][v]);
}

template <int L, int Rows>
LAMINA_INLINE void gemm(const float* a, int64_t a_i, int64_t a_k, const float* b, int64_t ldb, float* c,
                        int64_t ldc, int64_t rows, int64_t cols, int64_t K, bool accumulate) {
  for (int64_t j = 0; j < cols; j += 2 * L) {
    if (cols - j >= 2 * L) {
      for (int64_t i = 0; i < rows; i += Rows)
        micro<L, Rows, 2>(a + i * a_i, a_i, a_k, b + j, ldb, c + i * ldc + j, ldc, K, accumulate);
    } else {
      for (int64_t i = 0; i < rows; i += Rows)
        micro<L, Rows, 1>(a + i * a_i, a_i, a_k, b + j, ldb, c + i * ldc + j, ldc, K, accumulate);
    }
  }
}

int64_t round_up(int64_t v, int64_t multiple) {
  return (v + multiple - 1) / multiple * multiple;
}

// ---------------------------------------------------------------------------------------------
// Jobs

// Where the tiles of an output lie: tile t of image t / per_image, row (t % per_image) / tiles_w.
struct Tiling {
  int64_t m = 0, r = 0, alpha = 0;
  int64_t tiles_h = 0, tiles_w = 0, per_image = 0, tiles = 0;
  int64_t block = 0;  // tiles per block, a multiple of 8
  Tiling(int64_t m_, int64_t r_, int64_t n, int64_t oh, int64_t ow, int64_t cp, int64_t op)
      : m(m_), r(r_), alpha(m_ + r_ - 1) {
    tiles_h = (oh + m - 1) / m, tiles_w = (ow + m - 1) / m;
    per_image = tiles_h * tiles_w, tiles = n * per_image;
    // V and M of a block in about 384 KB, within any x86 core's L2 alongside U
    const int64_t bytes_per_tile = alpha * alpha * (cp + op) * int64_t(sizeof(float));
    block = std::clamp<int64_t>((384 << 10) / bytes_per_tile / 8 * 8, 8, 64);
  }
  int64_t blocks() const { return (tiles + block - 1) / block; }
};

// An input x (N,H,W,C) read in α×α tiles whose first cell is (tile row · m − top, tile col · m − left).
struct Input {
  const float* x;
  int64_t h, w, c, cp;
  int64_t top, left;
};

// Where input tile `t` starts: its image and its first cell's row and column in x (negative or past
// x's edge where the tile reaches into the padding).
struct TileOrigin {
  int64_t img, row0, col0;
};
inline TileOrigin tile_origin(const Input& in, const Tiling& tl, int64_t t) {
  const int64_t rem = t % tl.per_image;
  return {t / tl.per_image, rem / tl.tiles_w * tl.m - in.top, rem % tl.tiles_w * tl.m - in.left};
}

// Copies the input tile at `o` into d (α×α cells of cp channels), zero outside x and past its
// channels.
template <int L>
LAMINA_INLINE void gather_tile(const Input& in, const Tiling& tl, const TileOrigin& o, float* d) {
  const auto [img, row0, col0] = o;
  for (int64_t a = 0; a < tl.alpha; ++a) {
    const int64_t row = row0 + a;
    for (int64_t b = 0; b < tl.alpha; ++b) {
      const int64_t col = col0 + b;
      float* cell = d + (a * tl.alpha + b) * in.cp;
      if (row < 0 || row >= in.h || col < 0 || col >= in.w) {
        std::memset(cell, 0, size_t(in.cp) * sizeof(float));
        continue;
      }
      copy_padded<L>(cell, in.x + ((img * in.h + row) * in.w + col) * in.c, in.c, in.cp);
    }
  }
}

// Transforms tiles [t0, t0 + count) of the input into V[ξ][i][c] (ξ stride vld = block · cp), and
// zero rows [count, rows).
template <int L, int M, int R>
LAMINA_INLINE void transform_inputs(const Input& in, const Tiling& tl, int64_t t0, int64_t count,
                                    int64_t rows, float* d, float* v) {
  constexpr int64_t A = M + R - 1;
  const int64_t vld = tl.block * in.cp;
  for (int64_t i = 0; i < count; ++i) {
    // A tile inside x with no padding channels is transformed where it lies; others are gathered
    // (zeros outside x and in the padding channels) into d first.
    const TileOrigin o = tile_origin(in, tl, t0 + i);
    if (in.c == in.cp && o.row0 >= 0 && o.col0 >= 0 && o.row0 + A <= in.h && o.col0 + A <= in.w) {
      const float* tile = in.x + ((o.img * in.h + o.row0) * in.w + o.col0) * in.c;
      for (int64_t cv = 0; cv < in.cp; cv += L)
        input_transform<L, M, R>(tile + cv, in.w * in.c, in.c, v + i * in.cp + cv, vld);
      continue;
    }
    gather_tile<L>(in, tl, o, d);
    for (int64_t cv = 0; cv < in.cp; cv += L)
      input_transform<L, M, R>(d + cv, A * in.cp, in.cp, v + i * in.cp + cv, vld);
  }
  for (int64_t xi = 0; xi < A * A; ++xi)
    for (int64_t i = count; i < rows; ++i)
      std::memset(v + xi * vld + i * in.cp, 0, size_t(in.cp) * sizeof(float));
}

struct ForwardJob {
  Input in;
  Tiling tl;
  const float* u;  // U[ξ][cp][op]
  const float* bias;
  sdk::Activation act;
  float* y;
  int64_t oh, ow, o, op;
  size_t scratch_floats;  // per thread: d, V, M
};

LAMINA_INLINE float activate(float z, sdk::Activation act) {
  switch (act) {
    case sdk::Activation::relu:
      return z > 0.f ? z : 0.f;
    case sdk::Activation::sigmoid:
      return vector_sigmoid(z);
    case sdk::Activation::tanh:
      return vector_tanh(z);
    default:
      return z;
  }
}

template <int L, int M, int R, int Rows>
LAMINA_INLINE void forward_block(const ForwardJob& job, int64_t blk, float* scratch) {
  constexpr int64_t A = M + R - 1;
  const Tiling& tl = job.tl;
  const int64_t cp = job.in.cp, op = job.op;
  float* d = scratch;
  float* v = d + A * A * cp;
  float* p = v + A * A * tl.block * cp;
  const int64_t t0 = blk * tl.block, count = std::min(tl.block, tl.tiles - t0);
  const int64_t rows = round_up(count, Rows);
  transform_inputs<L, M, R>(job.in, tl, t0, count, rows, d, v);
  for (int64_t xi = 0; xi < A * A; ++xi)
    gemm<L, Rows>(v + xi * tl.block * cp, cp, 1, job.u + xi * cp * op, op, p + xi * tl.block * op, op, rows,
                  op, cp, false);
  alignas(64) float lanes[L];
  for (int64_t i = 0; i < count; ++i) {
    const int64_t t = t0 + i, img = t / tl.per_image, rem = t % tl.per_image;
    const int64_t row0 = rem / tl.tiles_w * M, col0 = rem % tl.tiles_w * M;
    for (int64_t ov = 0; ov < job.o; ov += L) {  // the padding's columns hold no output
      vec<L> out[M][M];
      output_transform<L, M, R>(p + i * op + ov, tl.block * op, out);
      const int64_t width = std::min<int64_t>(L, job.o - ov);
      if (job.bias) {
        std::fill(lanes, lanes + L, 0.f);
        std::memcpy(lanes, job.bias + ov, size_t(width) * sizeof(float));
      }
      const vec<L> bias = job.bias ? load<L>(lanes) : vec<L>{};
      for (int a = 0; a < M && row0 + a < job.oh; ++a)
        for (int b = 0; b < M && col0 + b < job.ow; ++b) {
          vec<L> z = out[a][b] + bias;
          if (job.act == sdk::Activation::relu) z = z > 0.f ? z : vec<L>{};
          float* dst = job.y + ((img * job.oh + row0 + a) * job.ow + col0 + b) * job.o + ov;
          if (width == L && (job.act == sdk::Activation::linear || job.act == sdk::Activation::relu)) {
            store<L>(dst, z);
            continue;
          }
          store<L>(lanes, z);
          for (int64_t l = 0; l < width; ++l) dst[l] = activate(lanes[l], job.act);
        }
    }
  }
}

struct FilterJob {
  Input in;
  Tiling tl;
  const float* dy;
  int64_t oh, ow, o, op;
  int64_t chunks, blocks_per_chunk;
  float* partials;        // chunks × A² × cp × op
  size_t scratch_floats;  // per thread: d, dY tile, V, Y'
};

template <int L, int M, int R, int Rows>
LAMINA_INLINE void filter_chunk(const FilterJob& job, int64_t chunk, float* scratch) {
  constexpr int64_t A = M + R - 1;
  const Tiling& tl = job.tl;
  const int64_t cp = job.in.cp, op = job.op;
  float* d = scratch;
  float* dyt = d + A * A * cp;
  float* v = dyt + M * M * op;
  float* g = v + A * A * tl.block * cp;
  float* part = job.partials + chunk * A * A * cp * op;
  std::memset(part, 0, size_t(A * A * cp * op) * sizeof(float));
  const int64_t first = chunk * job.blocks_per_chunk,
                last = std::min(tl.blocks(), first + job.blocks_per_chunk);
  for (int64_t blk = first; blk < last; ++blk) {
    const int64_t t0 = blk * tl.block, count = std::min(tl.block, tl.tiles - t0);
    transform_inputs<L, M, R>(job.in, tl, t0, count, count, d, v);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t t = t0 + i, img = t / tl.per_image, rem = t % tl.per_image;
      const int64_t row0 = rem / tl.tiles_w * M, col0 = rem % tl.tiles_w * M;
      for (int64_t a = 0; a < M; ++a)
        for (int64_t b = 0; b < M; ++b) {
          float* cell = dyt + (a * M + b) * op;
          const int64_t row = row0 + a, col = col0 + b;
          if (row >= job.oh || col >= job.ow) {
            std::memset(cell, 0, size_t(op) * sizeof(float));
            continue;
          }
          std::memcpy(cell, job.dy + ((img * job.oh + row) * job.ow + col) * job.o,
                      size_t(job.o) * sizeof(float));
          if (op > job.o) std::memset(cell + job.o, 0, size_t(op - job.o) * sizeof(float));
        }
      for (int64_t ov = 0; ov < op; ov += L)
        gradient_transform<L, M, R>(dyt + ov, op, g + i * op + ov, tl.block * op);
    }
    // part[ξ] (cp × op) += V[ξ]ᵀ · Y'[ξ], summed over the block's tiles
    for (int64_t xi = 0; xi < A * A; ++xi)
      gemm<L, Rows>(v + xi * tl.block * cp, 1, cp, g + xi * tl.block * op, op, part + xi * cp * op, op, cp,
                    op, count, true);
  }
}

// Calls body.template operator()<L, M, R>() with L = 16 where vector_isa() allows AVX-512, else 8.
template <int M, int R, class Body>
LAMINA_INLINE void with_width(Body&& body) {
  if (vector_isa() == VectorIsa::avx512)
    body.template operator()<16, M, R>();
  else
    body.template operator()<8, M, R>();
}

// Calls body.template operator()<L, M, R>() for this CPU's vector width L and the tile F(m×m, r×r).
// Called from the per-CPU copies below, with bodies that are inlined into them (LAMINA_INLINE), so
// that every instantiation is compiled for the copy's instruction set.
template <class Body>
LAMINA_INLINE void with_tile(int m, int r, Body&& body) {
  switch (m * 10 + r) {
    case 23:
      return with_width<2, 3>(body);
    case 43:
      return with_width<4, 3>(body);
    case 25:
      return with_width<2, 5>(body);
    case 45:
      return with_width<4, 5>(body);
    default:
      throw sdk::Error("onednn: no Winograd tile F(" + std::to_string(m) + ", " + std::to_string(r) + ")");
  }
}

// Rows of the channel products' register block: 8 rows × 2 vectors are 16 of AVX-512's 32
// registers, 4 × 2 are 8 of AVX2's 16 (8 × 2 would spill there).
template <int L>
constexpr int kRows = L == 16 ? 8 : 4;

// One entry point per job kind, compiled for AVX-512, AVX2 and baseline x86-64 (LAMINA_VECTOR_DISPATCH).
LAMINA_INLINE void run_forward_blocks_body(const ForwardJob& job, int64_t first, int64_t last,
                                           float* scratch) {
  with_tile(int(job.tl.m), int(job.tl.r), [&]<int L, int M, int R>() LAMINA_INLINE_LAMBDA {
    for (int64_t blk = first; blk < last; ++blk) forward_block<L, M, R, kRows<L>>(job, blk, scratch);
  });
}
LAMINA_VECTOR_DISPATCH(void, run_forward_blocks,
                       (const ForwardJob& job, int64_t first, int64_t last, float* scratch),
                       (job, first, last, scratch))

LAMINA_INLINE void run_filter_chunk_body(const FilterJob& job, int64_t chunk, float* scratch) {
  with_tile(int(job.tl.m), int(job.tl.r), [&]<int L, int M, int R>() LAMINA_INLINE_LAMBDA {
    filter_chunk<L, M, R, kRows<L>>(job, chunk, scratch);
  });
}
LAMINA_VECTOR_DISPATCH(void, run_filter_chunk, (const FilterJob& job, int64_t chunk, float* scratch),
                       (job, chunk, scratch))

// U[ξ][c][o] = G w[·][·][c][o] Gᵀ for w (R,R,C,O), zero in the padding channels.
template <int L, int M, int R>
LAMINA_INLINE void transform_kernel_as(const float* w, int64_t c, int64_t o, int64_t cp, int64_t op,
                                       float* u) {
  constexpr int64_t A = M + R - 1;
  std::memset(u, 0, size_t(A * A * cp * op) * sizeof(float));
  alignas(64) float g[R * R * L];
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t ov = 0; ov < o; ov += L) {
      const int64_t width = std::min<int64_t>(L, o - ov);
      for (int64_t k = 0; k < R * R; ++k) {
        std::memcpy(g + k * L, w + (k * c + ci) * o + ov, size_t(width) * sizeof(float));
        std::fill(g + k * L + width, g + (k + 1) * L, 0.f);
      }
      kernel_transform<L, M, R>(g, L, u + ci * op + ov, cp * op);
    }
}

LAMINA_INLINE void transform_kernel_body(int m, int r, const float* w, int64_t c, int64_t o, int64_t cp,
                                         int64_t op, float* u) {
  with_tile(m, r, [&]<int L, int M, int R>() LAMINA_INLINE_LAMBDA {
    transform_kernel_as<L, M, R>(w, c, o, cp, op, u);
  });
}
LAMINA_VECTOR_DISPATCH(void, transform_kernel,
                       (int m, int r, const float* w, int64_t c, int64_t o, int64_t cp, int64_t op, float* u),
                       (m, r, w, c, o, cp, op, u))

// dw[k][l][c][o] = (Gᵀ P G)[k][l] for P[ξ][cp][op].
template <int L, int M, int R>
LAMINA_INLINE void untransform_filter_as(const float* p, int64_t c, int64_t o, int64_t cp, int64_t op,
                                         float* dw) {
  alignas(64) float lanes[L];
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t ov = 0; ov < o; ov += L) {
      vec<L> out[R][R];
      filter_transform<L, M, R>(p + ci * op + ov, cp * op, out);
      const int64_t width = std::min<int64_t>(L, o - ov);
      for (int k = 0; k < R; ++k)
        for (int l = 0; l < R; ++l) {
          store<L>(lanes, out[k][l]);
          std::memcpy(dw + ((k * R + l) * c + ci) * o + ov, lanes, size_t(width) * sizeof(float));
        }
    }
}

LAMINA_INLINE void untransform_filter_body(int m, int r, const float* p, int64_t c, int64_t o, int64_t cp,
                                           int64_t op, float* dw) {
  with_tile(m, r, [&]<int L, int M, int R>() LAMINA_INLINE_LAMBDA {
    untransform_filter_as<L, M, R>(p, c, o, cp, op, dw);
  });
}
LAMINA_VECTOR_DISPATCH(void, untransform_filter,
                       (int m, int r, const float* p, int64_t c, int64_t o, int64_t cp, int64_t op,
                        float* dw),
                       (m, r, p, c, o, cp, op, dw))

// Runs body(i, scratch) for i in [0, n), spread over the OpenMP threads (dynamically: a thread that
// loses its core to another process takes fewer items) when the work is worth a parallel region.
template <class Body>
void for_each_item(int64_t n, bool parallel, float* scratch, size_t scratch_floats, Body&& body) {
  if (!parallel || n == 1 || omp_get_max_threads() == 1) {
    for (int64_t i = 0; i < n; ++i) body(i, scratch);
    return;
  }
#pragma omp parallel
  {
    float* mine = scratch + size_t(omp_get_thread_num()) * scratch_floats;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) body(i, mine);
  }
}

size_t aligned(size_t floats) {
  return (floats + 15) / 16 * 16;
}

// y (N, oh, ow, o) from x (N, g.h, g.w, c) and a kernel (r, r, c, o) whose taps start at (−top, −left).
// The workspace holds U, then one scratch area per thread.
void forward_with(const sdk::ConvGeometry& g, int m, const float* x, int64_t top, int64_t left,
                  const float* kernel_rrco, int64_t c, int64_t o, int64_t oh, int64_t ow, const float* bias,
                  sdk::Activation act, float* y, Workspace& ws) {
  const int64_t r = g.kh, alpha = m + r - 1;
  const int64_t cp = round_up(c, kChannelPad), op = round_up(o, kChannelPad);
  Tiling tl(m, r, g.n, oh, ow, cp, op);
  const size_t u_floats = aligned(size_t(alpha * alpha * cp * op));
  const size_t per_thread = aligned(size_t(alpha * alpha * cp + alpha * alpha * tl.block * (cp + op)));
  const int threads = omp_get_max_threads();
  float* u = ws.get(u_floats + per_thread * size_t(threads));
  transform_kernel(m, int(r), kernel_rrco, c, o, cp, op, u);
  ForwardJob job{Input{x, g.h, g.w, c, cp, top, left}, tl, u, bias, act, y, oh, ow, o, op, per_thread};
  for_each_item(tl.blocks(), tl.tiles * alpha * alpha * cp * op >= kParallelMacs, u + u_floats, per_thread,
                [&](int64_t blk, float* mine) { run_forward_blocks(job, blk, blk + 1, mine); });
}

}  // namespace

void forward(const sdk::ConvGeometry& g, int m, const float* x, const float* w, const float* bias,
             sdk::Activation act, float* y, Workspace& ws) {
  forward_with(g, m, x, g.top, g.left, w, g.c, g.o, g.oh, g.ow, bias, act, y, ws);
}

void backward_data(const sdk::ConvGeometry& g, int m, const float* dy, const float* w, float* dx,
                   Workspace& ws) {
  // dx is the forward pass over dy of the kernel flipped in both spatial axes, with C and O
  // exchanged, offset by r − 1 − pad: dx[h] = Σ_k dy[h − (r − 1 − top) + k] · w[r − 1 − k].
  const int64_t r = g.kh;
  std::vector<float> flipped(size_t(r * r * g.c * g.o));
  for (int64_t k = 0; k < r; ++k)
    for (int64_t l = 0; l < r; ++l)
      for (int64_t ci = 0; ci < g.c; ++ci)
        for (int64_t oi = 0; oi < g.o; ++oi)
          flipped[((k * r + l) * g.o + oi) * g.c + ci] =
              w[(((r - 1 - k) * r + (r - 1 - l)) * g.c + ci) * g.o + oi];
  sdk::ConvGeometry back = g;
  back.h = g.oh, back.w = g.ow;  // the input of this forward pass is dy
  forward_with(back, m, dy, r - 1 - g.top, r - 1 - g.left, flipped.data(), g.o, g.c, g.h, g.w, nullptr,
               sdk::Activation::linear, dx, ws);
}

void backward_filter(const sdk::ConvGeometry& g, int m, const float* x, const float* dy, float* dw, float* db,
                     Workspace& ws) {
  const int64_t r = g.kh, alpha = m + r - 1;
  const int64_t cp = round_up(g.c, kChannelPad), op = round_up(g.o, kChannelPad);
  Tiling tl(m, r, g.n, g.oh, g.ow, cp, op);
  // A partition fixed by the shape: at most 16 chunks of at least 4 blocks.
  const int64_t blocks = tl.blocks();
  const int64_t chunks = std::clamp<int64_t>(blocks / 4, 1, 16);
  const int64_t blocks_per_chunk = (blocks + chunks - 1) / chunks;
  const int64_t used_chunks = (blocks + blocks_per_chunk - 1) / blocks_per_chunk;
  const size_t part_floats = size_t(alpha * alpha * cp * op);
  const size_t per_thread =
      aligned(size_t(alpha * alpha * cp + m * m * op + alpha * alpha * tl.block * (cp + op)));
  const int threads = omp_get_max_threads();
  float* base = ws.get(aligned(part_floats * size_t(used_chunks)) + per_thread * size_t(threads));
  FilterJob job{Input{x, g.h, g.w, g.c, cp, g.top, g.left},
                tl,
                dy,
                g.oh,
                g.ow,
                g.o,
                op,
                used_chunks,
                blocks_per_chunk,
                base,
                per_thread};
  float* scratch = base + aligned(part_floats * size_t(used_chunks));
  const bool parallel = tl.tiles * alpha * alpha * cp * op >= kParallelMacs;
  for_each_item(used_chunks, parallel, scratch, per_thread,
                [&](int64_t chunk, float* mine) { run_filter_chunk(job, chunk, mine); });
  // Σ over chunks in chunk order, then back to the kernel's shape
  for (int64_t k = 1; k < used_chunks; ++k) {
    const float* part = base + k * int64_t(part_floats);
    for (size_t i = 0; i < part_floats; ++i) base[i] += part[i];
  }
  untransform_filter(m, int(r), base, g.c, g.o, cp, op, dw);
  if (db) {
    std::fill(db, db + g.o, 0.f);
    const int64_t pixels = g.n * g.oh * g.ow;
    for (int64_t i = 0; i < pixels; ++i)
      for (int64_t oi = 0; oi < g.o; ++oi) db[oi] += dy[i * g.o + oi];
  }
}

}  // namespace lamina::onednn::winograd
