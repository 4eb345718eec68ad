// Host-side shape logic of the cudnn backend; see geometry.hpp.
#include "geometry.hpp"

#include <algorithm>
#include <climits>
#include <set>

namespace lamina::cudnn {
namespace {

int64_t size_of(const lamina_view& v) {
  return sdk::view_size(v);
}

std::string pair_string(int64_t a, int64_t b) {
  return "[" + std::to_string(a) + "," + std::to_string(b) + "]";
}

std::string pads_string(int64_t t, int64_t b, int64_t l, int64_t r) {
  return "[" + std::to_string(t) + "," + std::to_string(b) + "," + std::to_string(l) + "," +
         std::to_string(r) + "]";
}

// "conv2d: " — empty when the caller already names the op (the kernel wrapper does).
std::string prefix(const char* op) {
  return op && *op ? std::string(op) + ": " : std::string();
}

void expect_rank(const char* op, const char* name, const lamina_view& v, int rank, const char* layout) {
  if (v.ndim != rank)
    throw sdk::Error(prefix(op) + name + " has shape " + shape_string(v) + ", expected rank " +
                     std::to_string(rank) + " " + layout);
}

}  // namespace

std::string shape_string(const lamina_view& v) {
  std::string s = "(";
  for (int32_t i = 0; i < v.ndim; ++i) {
    if (i) s += ',';
    s += std::to_string(v.shape[i]);
  }
  return s + ")";
}

int to_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw sdk::Error(std::string(what) + " is " + std::to_string(value) +
                     ", beyond the int range cuDNN and cuBLAS accept");
  return int(value);
}

int64_t window_extent(int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t k, int64_t s) {
  const int64_t padded = in + pad_lo + pad_hi;
  return padded >= k && s >= 1 ? (padded - k) / s + 1 : 0;
}

// ------------------------------------------------------------------------------------------------

ConvGeometry conv_geometry(const char* op, const sdk::AttrReader& attrs, const lamina_view& x,
                           const lamina_view& w, const lamina_view& y) {
  expect_rank(op, "x", x, 4, "(N,H,W,C)");
  expect_rank(op, "w", w, 4, "(KH,KW,C,O)");
  expect_rank(op, "y", y, 4, "(N,OH,OW,O)");
  const auto strides = attrs.get_ints<2>("strides", {1, 1});
  const auto pads = attrs.get_ints<4>("pads", {0, 0, 0, 0});
  ConvGeometry g;
  g.n = x.shape[0], g.h = x.shape[1], g.w = x.shape[2], g.c = x.shape[3];
  g.kh = w.shape[0], g.kw = w.shape[1], g.o = w.shape[3];
  g.oh = y.shape[1], g.ow = y.shape[2];
  g.sh = strides[0], g.sw = strides[1];
  g.top = pads[0], g.bottom = pads[1], g.left = pads[2], g.right = pads[3];

  auto fail = [&](const std::string& why) {
    return sdk::Error(prefix(op) + why + "; x " + shape_string(x) + ", w " + shape_string(w) + ", y " +
                      shape_string(y) + ", strides " + pair_string(g.sh, g.sw) + ", pads " +
                      pads_string(g.top, g.bottom, g.left, g.right));
  };
  if (w.shape[2] != g.c || y.shape[0] != g.n || y.shape[3] != g.o)
    throw fail("shapes disagree: expected x (N,H,W,C), w (KH,KW,C,O), y (N,OH,OW,O)");
  if (g.sh < 1 || g.sw < 1) throw fail("strides must be at least 1");
  if (g.top < 0 || g.bottom < 0 || g.left < 0 || g.right < 0) throw fail("pads must not be negative");
  if (g.kh < 1 || g.kw < 1) throw fail("the kernel window must be at least 1x1");
  const int64_t want_h = window_extent(g.h, g.top, g.bottom, g.kh, g.sh);
  const int64_t want_w = window_extent(g.w, g.left, g.right, g.kw, g.sw);
  if (want_h == 0 || want_w == 0) throw fail("the kernel window does not fit the padded input");
  if (g.oh != want_h || g.ow != want_w)
    throw fail(
        "y's spatial size must be (H + top + bottom - KH) / sh + 1 by (W + left + right - KW) / sw + 1 = " +
        std::to_string(want_h) + "x" + std::to_string(want_w));

  // Everything cuDNN is told is an int, including the element strides of each tensor.
  to_int(g.n, "the batch size");
  to_int(g.c, "the input channels");
  to_int(g.o, "the output channels");
  to_int(g.kh * g.kw * g.c * g.o, "the kernel's element count");
  to_int(g.n * g.cudnn_h() * g.cudnn_w() * g.c, "the (padded) input's element count");
  to_int(g.n * g.oh * g.ow * g.o, "the output's element count");
  return g;
}

FusedActivation read_fused_activation(const sdk::AttrReader& attrs) {
  const lamina_attr* a = attrs.find("activation");
  if (!a) return FusedActivation::linear;
  if (a->type != LAMINA_ATTR_STRING)
    throw sdk::Error("attribute 'activation' must be a string (linear, relu, sigmoid or tanh)");
  const std::string name = a->text ? a->text : "";
  if (name.empty() || name == "linear") return FusedActivation::linear;
  if (name == "relu") return FusedActivation::relu;
  if (name == "sigmoid") return FusedActivation::sigmoid;
  if (name == "tanh") return FusedActivation::tanh;
  throw sdk::Error("unknown activation '" + name + "' (known: linear, relu, sigmoid, tanh)");
}

// ------------------------------------------------------------------------------------------------

bool PoolGeometry::has_empty_window() const {
  return top >= ph || left >= pw || (oh - 1) * sh - top >= h || (ow - 1) * sw - left >= w;
}

PoolGeometry pool_geometry(const char* op, const sdk::AttrReader& attrs, const lamina_view& x,
                           const lamina_view& y) {
  expect_rank(op, "the input-side tensor", x, 4, "(N,H,W,C)");
  expect_rank(op, "the output-side tensor", y, 4, "(N,OH,OW,C)");
  attrs.need("pool");
  const auto pool = attrs.get_ints<2>("pool", {1, 1});
  const auto strides = attrs.get_ints<2>("strides", {1, 1});
  const auto pads = attrs.get_ints<4>("pads", {0, 0, 0, 0});
  PoolGeometry g;
  g.n = x.shape[0], g.h = x.shape[1], g.w = x.shape[2], g.c = x.shape[3];
  g.oh = y.shape[1], g.ow = y.shape[2];
  g.ph = pool[0], g.pw = pool[1], g.sh = strides[0], g.sw = strides[1];
  g.top = pads[0], g.bottom = pads[1], g.left = pads[2], g.right = pads[3];

  auto fail = [&](const std::string& why) {
    return sdk::Error(prefix(op) + why + "; input side " + shape_string(x) + ", output side " +
                      shape_string(y) + ", pool " + pair_string(g.ph, g.pw) + ", strides " +
                      pair_string(g.sh, g.sw) + ", pads " + pads_string(g.top, g.bottom, g.left, g.right));
  };
  if (y.shape[0] != g.n || y.shape[3] != g.c)
    throw fail("batch or channels disagree: expected (N,H,W,C) and (N,OH,OW,C)");
  if (g.ph < 1 || g.pw < 1) throw fail("the pool window must be at least 1x1");
  if (g.sh < 1 || g.sw < 1) throw fail("strides must be at least 1");
  if (g.top < 0 || g.bottom < 0 || g.left < 0 || g.right < 0) throw fail("pads must not be negative");
  const int64_t want_h = window_extent(g.h, g.top, g.bottom, g.ph, g.sh);
  const int64_t want_w = window_extent(g.w, g.left, g.right, g.pw, g.sw);
  if (want_h == 0 || want_w == 0) throw fail("the pool window does not fit the padded input");
  if (g.oh != want_h || g.ow != want_w)
    throw fail(
        "the output size must be (H + top + bottom - ph) / sh + 1 by (W + left + right - pw) / sw + 1 = " +
        std::to_string(want_h) + "x" + std::to_string(want_w));
  return g;
}

PoolPath choose_pool_path(const PoolGeometry& g, bool max, bool backward) {
  if (backward || g.has_empty_window()) return PoolPath::own;
  if (max ? !g.unpadded() : !g.symmetric()) return PoolPath::own;
  // cuDNN's descriptors hold ints, element strides included.
  if (g.n * g.h * g.w * g.c > INT_MAX || g.n * g.oh * g.ow * g.c > INT_MAX) return PoolPath::own;
  return PoolPath::cudnn;
}

// ------------------------------------------------------------------------------------------------

BroadcastPlan plan_broadcast(const lamina_view& a, const lamina_view& b, const lamina_view& y) {
  if (a.ndim != y.ndim || b.ndim != y.ndim)
    throw sdk::Error("a " + shape_string(a) + ", b " + shape_string(b) + " and y " + shape_string(y) +
                     " must have the same rank (the core expands ranks before calling)");
  BroadcastPlan p;
  p.size = size_of(y);
  // Groups of y's non-unit axes, outermost first, with whether a and b are full along them.
  bool a_full[LAMINA_MAX_DIMS] = {}, b_full[LAMINA_MAX_DIMS] = {};
  for (int32_t d = 0; d < y.ndim; ++d) {
    const int64_t yd = y.shape[d], ad = a.shape[d], bd = b.shape[d];
    if ((ad != yd && ad != 1) || (bd != yd && bd != 1))
      throw sdk::Error("cannot broadcast a " + shape_string(a) + " and b " + shape_string(b) + " to y " +
                       shape_string(y) + ": axis " + std::to_string(d) + " of a and b must be y's or 1");
    if (yd == 1) continue;
    const bool af = ad == yd, bf = bd == yd;
    if (p.rank > 0 && a_full[p.rank - 1] == af && b_full[p.rank - 1] == bf) {
      p.dims[p.rank - 1] *= yd;
    } else {
      a_full[p.rank] = af, b_full[p.rank] = bf;
      p.dims[p.rank++] = yd;
    }
  }
  int64_t step_a = 1, step_b = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    p.stride_a[d] = a_full[d] ? step_a : 0;
    p.stride_b[d] = b_full[d] ? step_b : 0;
    if (a_full[d]) step_a *= p.dims[d];
    if (b_full[d]) step_b *= p.dims[d];
  }
  bool all_a = true, no_b = true, all_b = true;
  for (int d = 0; d < p.rank; ++d) {
    all_a &= a_full[d];
    all_b &= b_full[d];
    no_b &= !b_full[d];
  }
  if (all_a && all_b)
    p.kind = BroadcastPlan::Kind::same;
  else if (all_a && no_b)
    p.kind = BroadcastPlan::Kind::scalar_b;
  else
    p.kind = BroadcastPlan::Kind::general;
  return p;
}

// ------------------------------------------------------------------------------------------------

ReducePlan plan_reduce(const lamina_view& x, const lamina_view& y) {
  if (x.ndim != y.ndim)
    throw sdk::Error("x " + shape_string(x) + " and y " + shape_string(y) +
                     " must have the same rank (summed axes are kept as 1)");
  ReducePlan p;
  p.out_size = size_of(y);
  for (int32_t d = 0; d < x.ndim; ++d) {
    const int64_t xd = x.shape[d], yd = y.shape[d];
    if (yd != xd && yd != 1)
      throw sdk::Error("cannot sum x " + shape_string(x) + " into y " + shape_string(y) + ": axis " +
                       std::to_string(d) + " of y must be x's or 1");
    if (xd == 1) continue;
    const bool summed = yd == 1;
    if (p.rank > 0 && p.summed[p.rank - 1] == summed) {
      p.dims[p.rank - 1] *= xd;
    } else {
      p.summed[p.rank] = summed;
      p.dims[p.rank++] = xd;
    }
  }
  int64_t step = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    p.strides[d] = step;
    step *= p.dims[d];
  }

  int summed_groups = 0, summed_at = -1;
  for (int d = 0; d < p.rank; ++d)
    if (p.summed[d]) ++summed_groups, summed_at = d;
  if (summed_groups == 0) {
    p.kind = ReducePlan::Kind::copy;
  } else if (summed_groups == 1 && p.rank <= 3) {
    // Groups alternate, so one summed group among at most three is [R], [K,R], [R,K] or [K,R,K].
    p.kind = ReducePlan::Kind::outer_len_inner;
    p.outer = summed_at > 0 ? p.dims[0] : 1;
    p.len = p.dims[summed_at];
    p.inner = summed_at + 1 < p.rank ? p.dims[summed_at + 1] : 1;
  } else {
    p.kind = ReducePlan::Kind::general;
  }
  return p;
}

// ------------------------------------------------------------------------------------------------

GemmPlan plan_gemm(const lamina_view& a, const lamina_view& b, const lamina_view& y, bool transpose_a,
                   bool transpose_b) {
  expect_rank("", "a", a, 2, transpose_a ? "(K,M)" : "(M,K)");
  expect_rank("", "b", b, 2, transpose_b ? "(N,K)" : "(K,N)");
  expect_rank("", "y", y, 2, "(M,N)");
  const int64_t m = transpose_a ? a.shape[1] : a.shape[0];
  const int64_t k = transpose_a ? a.shape[0] : a.shape[1];
  const int64_t k_b = transpose_b ? b.shape[1] : b.shape[0];
  const int64_t n = transpose_b ? b.shape[0] : b.shape[1];
  if (k != k_b || y.shape[0] != m || y.shape[1] != n)
    throw sdk::Error("a " + shape_string(a) + (transpose_a ? " (transposed)" : "") + " times b " +
                     shape_string(b) + (transpose_b ? " (transposed)" : "") + " does not give y " +
                     shape_string(y));
  GemmPlan p;
  p.transpose_a = transpose_a, p.transpose_b = transpose_b;
  p.m = to_int(m, "matmul's M");
  p.n = to_int(n, "matmul's N");
  p.k = to_int(k, "matmul's K");
  // A row-major matrix's leading dimension, as column-major, is its row length; cuBLAS wants >= 1.
  p.lda = std::max(1, to_int(a.shape[1], "a's row length"));
  p.ldb = std::max(1, to_int(b.shape[1], "b's row length"));
  p.ldy = std::max(1, p.n);
  return p;
}

// ------------------------------------------------------------------------------------------------

std::vector<AlgoCandidate> rank_algorithms(const std::vector<AlgoCandidate>& proposed,
                                           const AlgoPolicy& policy, int fallback) {
  std::vector<AlgoCandidate> out;
  std::set<int> seen;
  for (const AlgoCandidate& c : proposed) {
    if (!c.ok || c.workspace > policy.workspace_limit) continue;
    if (policy.deterministic_only && !c.deterministic) continue;
    if (!seen.insert(c.algo).second) continue;
    out.push_back(c);
  }
  if (!seen.count(fallback)) {
    AlgoCandidate f;
    f.algo = fallback;
    out.push_back(f);
  }
  return out;
}

Math math_for(const AlgoCandidate& candidate, const AlgoPolicy& policy) {
  return policy.allow_tf32 ? candidate.math : Math::fma;
}

int64_t reduce_splits(int64_t len, int64_t blocks_per_slice, int sm_count) {
  // Below these, one pass is as fast: a slice keeps each thread of a 256-thread block busy with at
  // least a few additions, and four blocks per multiprocessor hide memory latency.
  constexpr int64_t kMinSlice = 1024;
  const int64_t wanted_blocks = int64_t(std::max(sm_count, 1)) * 4;
  if (len < 2 * kMinSlice || blocks_per_slice >= wanted_blocks) return 1;
  const int64_t by_occupancy = (wanted_blocks + blocks_per_slice - 1) / blocks_per_slice;
  const int64_t by_length = len / kMinSlice;
  return std::max<int64_t>(1, std::min({by_occupancy, by_length, int64_t(65535)}));
}

int lowest_architecture(const std::string& list) {
  int lowest = 0;
  size_t i = 0;
  while (i < list.size()) {
    size_t end = list.find_first_of(";, ", i);
    if (end == std::string::npos) end = list.size();
    int value = 0;
    size_t j = i;
    while (j < end && list[j] >= '0' && list[j] <= '9') value = value * 10 + (list[j++] - '0');
    if (j > i && (lowest == 0 || value < lowest)) lowest = value;
    i = end + 1;
  }
  return lowest;
}

}  // namespace lamina::cudnn
