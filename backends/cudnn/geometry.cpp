// Host-side shape logic of the cudnn backend; see geometry.hpp.
#include "geometry.hpp"

#include <algorithm>
#include <climits>
#include <set>

namespace lamina::cudnn {

using namespace sdk;

int to_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw sdk::Error(std::string(what) + " is " + std::to_string(value) +
                     ", beyond the int range cuDNN and cuBLAS accept");
  return int(value);
}

// ------------------------------------------------------------------------------------------------

ConvGeometry cudnn_conv_geometry(const sdk::AttrReader& attrs, const lamina_view& x, const lamina_view& w,
                                 const lamina_view& y) {
  ConvGeometry g{sdk::full_conv_geometry(attrs, x, w, y)};
  // Everything cuDNN is told is an int, including the element strides of each tensor.
  to_int(g.n, "the batch size");
  to_int(g.c, "the input channels");
  to_int(g.o, "the output channels");
  to_int(g.kh * g.kw * g.cg * g.o, "the kernel's element count");
  to_int(g.n * g.cudnn_h() * g.cudnn_w() * g.c, "the (padded) input's element count");
  to_int(g.n * g.oh * g.ow * g.o, "the output's element count");
  return g;
}

// ------------------------------------------------------------------------------------------------

PoolPath choose_pool_path(const PoolGeometry& g, bool max, bool backward) {
  if (backward || g.has_empty_window()) return PoolPath::own;
  if (max ? !g.unpadded() : !g.symmetric()) return PoolPath::own;
  // cuDNN's descriptors hold ints, element strides included.
  if (g.n * g.h * g.w * g.c > INT_MAX || g.n * g.oh * g.ow * g.c > INT_MAX) return PoolPath::own;
  return PoolPath::cudnn;
}

// ------------------------------------------------------------------------------------------------

BroadcastPlan plan_broadcast(const lamina_view& a, const lamina_view& b, const lamina_view& y) {
  expect_broadcast_shapes(a, b, y);
  BroadcastPlan p;
  p.size = sdk::view_size(y);
  // Groups of y's non-unit axes, outermost first, with whether a and b are full along them.
  bool a_full[LAMINA_MAX_DIMS] = {}, b_full[LAMINA_MAX_DIMS] = {};
  for (int32_t d = 0; d < y.ndim; ++d) {
    const int64_t yd = y.shape[d], ad = a.shape[d], bd = b.shape[d];
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
  expect_reduce_shapes(x, y);
  ReducePlan p;
  p.out_size = sdk::view_size(y);
  for (int32_t d = 0; d < x.ndim; ++d) {
    const int64_t xd = x.shape[d], yd = y.shape[d];
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
  const MatmulGeometry g = matmul_geometry(a, b, y, transpose_a, transpose_b);
  GemmPlan p;
  p.transpose_a = transpose_a, p.transpose_b = transpose_b;
  p.m = to_int(g.m, "matmul's M");
  p.n = to_int(g.n, "matmul's N");
  p.k = to_int(g.k, "matmul's K");
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
