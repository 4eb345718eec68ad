// reduce_sum, softmax, log_softmax and the fused losses.
//
// softmax runs on oneDNN's softmax primitive; log_softmax is a loop (see log_softmax_kernel).
//
// reduce_sum is a loop accumulating in double, like the reference backend, rather than oneDNN's
// reduction primitive. For the bias gradient (N·H·W, C) → (1, C) oneDNN 2.6 has only its
// reference implementation, which splits work over the few outputs alone. Where it does have a
// JIT kernel (sums over the innermost dims) it accumulates in float, 2.3e-6 relative off on a sum
// of 10^6 values, though faster (0.06 ms against 0.20 ms on one core); training steps only sum
// short rows that way (softmax gradients), so the loop's exactness costs nothing there.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;

// x against y with size-1 input dims dropped and neighbouring dims of the same kind (summed or
// kept) merged: (N,H,W,C) → (1,1,1,C) becomes (N·H·W, C) → (1, C). Held inline: a training step
// sums a bias gradient or two, and three heap allocations cost more than a (16, 100) sum.
struct Reduction {
  int n = 0;  // groups; the arrays' first n entries are set
  int64_t x[LAMINA_MAX_DIMS], y[LAMINA_MAX_DIMS];
  bool summed[LAMINA_MAX_DIMS];
  bool sums_nothing() const { return std::equal(x, x + n, y); }
};

Reduction collapse(const lamina_view& vx, const lamina_view& vy) {
  expect_reduce_shapes(vx, vy);
  Reduction r;
  for (int32_t i = 0; i < vx.ndim; ++i) {
    int64_t dx = vx.shape[i], dy = vy.shape[i];
    if (dx == 1) continue;
    bool summed = dy == 1;
    if (r.n > 0 && r.summed[r.n - 1] == summed) {
      r.x[r.n - 1] *= dx;
      r.y[r.n - 1] *= dy;
    } else {
      r.x[r.n] = dx;
      r.y[r.n] = dy;
      r.summed[r.n] = summed;
      ++r.n;
    }
  }
  if (r.n == 0) {
    r.n = 1;
    r.x[0] = r.y[0] = 1;
    r.summed[0] = false;
  }
  return r;
}

// y(B) = Σ_r x(R, B) for a few rows: 16 columns at a time, their double sums held in registers
// down all R rows (the column-array loop below loads and stores every partial sum once per row),
// compiled for the machine's vector width rather than the baseline's SSE2. A (16, 100) bias
// gradient on an AVX2 core: 340 ns → 190 ns.
LAMINA_INLINE void sum_rows_small_body(const float* __restrict x, float* __restrict y, int64_t R, int64_t B) {
  constexpr int64_t kGroup = 16;
  int64_t b0 = 0;
  for (; b0 + kGroup <= B; b0 += kGroup) {
    double acc[kGroup] = {};
    for (int64_t r = 0; r < R; ++r) {
      const float* p = x + r * B + b0;
      for (int64_t b = 0; b < kGroup; ++b) acc[b] += double(p[b]);
    }
    for (int64_t b = 0; b < kGroup; ++b) y[b0 + b] = float(acc[b]);
  }
  if (b0 == B) return;
  double acc[kGroup] = {};
  const int64_t width = B - b0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t b = 0; b < width; ++b) acc[b] += double(x[r * B + b0 + b]);
  for (int64_t b = 0; b < width; ++b) y[b0 + b] = float(acc[b]);
}
LAMINA_VECTOR_DISPATCH(void, sum_rows_small,
                       (const float* __restrict x, float* __restrict y, int64_t R, int64_t B), (x, y, R, B))

// y(A, B) = Σ_r x(A, R, B), accumulating in double. The work is split over whichever of A, B or R
// gives every thread a share, without per-thread copies of a large output.
template <class In, class Out>
void sum_middle(const In* x, Out* y, int64_t A, int64_t R, int64_t B) {
  const int64_t threads = omp_get_max_threads();
  const bool big = A * R * B > kParallelThreshold;
  if (B == 1) {  // contiguous row sums, vectorised across the row
    if (A >= threads || !big) {
      for_each_index(A, big, [&](int64_t a) {
        const In* row = x + a * R;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t r = 0; r < R; ++r) sum += double(row[r]);
        y[a] = Out(sum);
      });
    } else {
      for (int64_t a = 0; a < A; ++a) {  // few long rows: each split over the threads
        const In* row = x + a * R;
        double sum = 0.0;
        // A region with its own split rather than `parallel for simd`, whose reduction clang leaves
        // unvectorised.
#pragma omp parallel reduction(+ : sum)
        {
          const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
          const int64_t begin = R * t / n, end = R * (t + 1) / n;
          double part = 0.0;
#pragma omp simd reduction(+ : part)
          for (int64_t r = begin; r < end; ++r) part += double(row[r]);
          sum += part;
        }
        y[a] = Out(sum);
      }
    }
    return;
  }
  if constexpr (std::is_same_v<In, float> && std::is_same_v<Out, float>) {
    if (A == 1 && !big) {  // one short row of sums (a bias gradient)
      sum_rows_small(x, y, R, B);
      return;
    }
  }
  constexpr int64_t kColumns = 1024;
  const int64_t column_blocks = (B + kColumns - 1) / kColumns;
  if (!big || A >= threads || A * column_blocks >= threads) {
    // Each (row, column block) of the output is summed by one thread, down the R rows.
    for_each_index(A * column_blocks, big, [&](int64_t task) {
      int64_t a = task / column_blocks;
      int64_t b0 = (task % column_blocks) * kColumns;
      int64_t width = std::min(kColumns, B - b0);
      double acc[kColumns];
      std::fill(acc, acc + width, 0.0);
      const In* base = x + a * R * B + b0;
      for (int64_t r = 0; r < R; ++r) {
        const In* p = base + r * B;
#pragma omp simd
        for (int64_t b = 0; b < width; ++b) acc[b] += double(p[b]);
      }
      for (int64_t b = 0; b < width; ++b) y[a * B + b0 + b] = Out(acc[b]);
    });
    return;
  }
  // A small output (the bias gradient has one short row): split R, then add the partial sums.
  std::vector<double> total(size_t(A * B), 0.0);
#pragma omp parallel
  {
    std::vector<double> acc(size_t(A * B), 0.0);
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t a = 0; a < A; ++a) {
        const In* p = x + (a * R + r) * B;
        double* q = acc.data() + a * B;
#pragma omp simd
        for (int64_t b = 0; b < B; ++b) q[b] += double(p[b]);
      }
    }
#pragma omp critical
    for (size_t i = 0; i < total.size(); ++i) total[i] += acc[i];
  }
  for (size_t i = 0; i < total.size(); ++i) y[i] = Out(total[i]);
}

// Sums the collapsed groups one at a time from the innermost, through double buffers.
void reduce_loop(const Reduction& r, const float* x, float* y) {
  const int n = r.n;
  int64_t dims[LAMINA_MAX_DIMS];
  std::copy(r.x, r.x + n, dims);
  std::vector<double> buffer, next;
  bool in_buffer = false;
  for (int g = n - 1; g >= 0; --g) {
    if (!r.summed[g]) continue;
    int64_t A = 1, B = 1;
    for (int i = 0; i < g; ++i) A *= dims[i];
    for (int i = g + 1; i < n; ++i) B *= dims[i];
    int64_t R = dims[g];
    bool last = true;
    for (int i = 0; i < g; ++i) last = last && !r.summed[i];
    if (last) {
      if (in_buffer)
        sum_middle(buffer.data(), y, A, R, B);
      else
        sum_middle(x, y, A, R, B);
      return;
    }
    next.assign(size_t(A * B), 0.0);
    if (in_buffer)
      sum_middle(buffer.data(), next.data(), A, R, B);
    else
      sum_middle(x, next.data(), A, R, B);
    buffer.swap(next);
    in_buffer = true;
    dims[g] = 1;
  }
}

// reduce_sum: x → y, y of x's rank with 1 on the summed axes.
ONEDNN_KERNEL(reduce_sum_kernel, "reduce_sum") {
  expect_views(args, 1, 1);
  const lamina_view& vx = args.inputs[0];
  const lamina_view& vy = args.outputs[0];
  Reduction r = collapse(vx, vy);
  float* y = out_data(vy);
  int64_t ny = sdk::view_size(vy);
  if (ny == 0) return;
  if (sdk::view_size(vx) == 0) {
    std::fill(y, y + ny, 0.f);
    return;
  }
  const float* x = in_data(vx);
  if (r.sums_nothing()) {  // nothing to sum: only size-1 dims differ in name
    if (x != y) std::memcpy(y, x, size_t(ny) * sizeof(float));
    return;
  }
  reduce_loop(r, x, y);
}

// Checks x → y for softmax and log_softmax and returns (rows, classes).
std::pair<int64_t, int64_t> softmax_rows(const sdk::KernelArgs& args, const char* op) {
  expect_views(args, 1, 1);
  const Rows r = last_axis_rows(args.inputs[0], args.outputs[0]);
  return {r.rows, r.length};
}

// softmax over the last axis, seen as (rows, classes).
struct SoftmaxEntry {
  dnnl::softmax_v2_forward primitive;
  memory src, dst;
};

ONEDNN_KERNEL(softmax_kernel, "softmax") {
  const char* op = "softmax";
  // Not a structured binding: clang before 16 cannot capture one in the lambdas below.
  int64_t rows = 0, classes = 0;
  std::tie(rows, classes) = softmax_rows(args, op);
  if (rows == 0) return;
  std::lock_guard lock(be.mutex);
  SerialScope serial(rows * classes < kParallelThreshold);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<SoftmaxEntry>(CacheKey(op).add(rows).add(classes), [&] {
      memory::desc md = plain_desc({rows, classes});
      dnnl::softmax_v2_forward::desc desc(dnnl::prop_kind::forward_inference,
                                          dnnl::algorithm::softmax_accurate, md, md, 1);
      dnnl::softmax_v2_forward::primitive_desc pd(desc, be.engine);
      auto e = std::make_shared<SoftmaxEntry>();
      e->primitive = dnnl::softmax_v2_forward(pd);
      e->src = unbound_memory(md, be.engine);
      e->dst = unbound_memory(md, be.engine);
      return e;
    });
    bind(entry->src, args.inputs[0].data);
    bind(entry->dst, args.outputs[0].data);
    entry->primitive.execute(be.stream, {{DNNL_ARG_SRC, entry->src}, {DNNL_ARG_DST, entry->dst}});
    be.stream.wait();
  });
}

// log_softmax: y = x - max - log(sum(exp(x - max))) per row. A loop rather than oneDNN's
// softmax_log, whose vectorised log is off by about 1e-6 absolute when the log-sum is near 0, the
// confident-prediction case that decides small cross-entropy losses; here the sum is in double
// and the log is taken once per row, exactly.
ONEDNN_KERNEL(log_softmax_kernel, "log_softmax") {
  // Not a structured binding: clang before 16 cannot capture one in the lambdas below.
  int64_t rows = 0, classes = 0;
  std::tie(rows, classes) = softmax_rows(args, "log_softmax");
  const float* x = in_data(args.inputs[0]);
  float* y = out_data(args.outputs[0]);
  for_each_index(rows, rows * classes > kParallelThreshold / 8, [&](int64_t r) {
    const float* xr = x + r * classes;
    float* yr = y + r * classes;
    float m = xr[0];
    for (int64_t j = 1; j < classes; ++j) m = std::max(m, xr[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < classes; ++j) sum += double(std::exp(xr[j] - m));
    const double shift = double(m) + std::log(sum);
    for (int64_t j = 0; j < classes; ++j) yr[j] = float(double(xr[j]) - shift);
  });
}

// ---------------------------------------------------------------------------------------------
// Fused losses (docs/ops.md): prediction p (or logits z) and target t of one shape. Loops, summing
// in double as the reference does; a training step of a small model calls them once each.

// Checks p, t [, g] → out and returns the element count.
int64_t loss_operands(const sdk::KernelArgs& args, const char* op, bool backward) {
  expect_views(args, backward ? 3 : 2, 1);
  const lamina_view& p = args.inputs[0];
  expect_same_size(p, "p", args.inputs[1], "t");
  if (backward) {
    expect_same_size(p, "p", args.outputs[0], "dp");
    if (sdk::view_size(args.inputs[2]) != 1)
      throw sdk::Error("the loss gradient " + shape_string(args.inputs[2]) + " must hold one value");
  } else if (sdk::view_size(args.outputs[0]) != 1) {
    throw sdk::Error("the loss " + shape_string(args.outputs[0]) + " must hold one value");
  }
  return sdk::view_size(p);
}

LAMINA_INLINE double squared_distance_body(const float* __restrict p, const float* __restrict t, int64_t n) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(p[i]) - double(t[i]);
    sum += d * d;
  }
  return sum;
}
LAMINA_VECTOR_DISPATCH(double, squared_distance,
                       (const float* __restrict p, const float* __restrict t, int64_t n), (p, t, n))

LAMINA_INLINE void scaled_difference_body(const float* __restrict p, const float* __restrict t,
                                          float* __restrict d, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = (p[i] - t[i]) * factor;
}
LAMINA_VECTOR_DISPATCH(void, scaled_difference,
                       (const float* __restrict p, const float* __restrict t, float* __restrict d,
                        float factor, int64_t n),
                       (p, t, d, factor, n))

ONEDNN_KERNEL(mean_squared_error_kernel, "mean_squared_error") {
  const int64_t n = loss_operands(args, "mean_squared_error", false);
  const float* p = in_data(args.inputs[0]);
  const float* t = in_data(args.inputs[1]);
  double sum = 0.0;
  // Large tensors in parts, one per thread, summed in a fixed order (the same result every run).
  constexpr int64_t kPart = 1 << 16;
  const int64_t parts = (n + kPart - 1) / kPart;
  std::vector<double> partial(size_t(std::max<int64_t>(parts, 1)), 0.0);
  for_each_index(parts, parts > 1, [&](int64_t k) {
    const int64_t begin = k * kPart;
    partial[size_t(k)] = squared_distance(p + begin, t + begin, std::min(kPart, n - begin));
  });
  for (double v : partial) sum += v;
  out_data(args.outputs[0])[0] = float(sum / double(std::max<int64_t>(n, 1)));
}

ONEDNN_KERNEL(mean_squared_error_backward_kernel, "mean_squared_error_backward") {
  const int64_t n = loss_operands(args, "mean_squared_error_backward", true);
  const float factor = float(2.0 * double(in_data(args.inputs[2])[0]) / double(std::max<int64_t>(n, 1)));
  const float* p = in_data(args.inputs[0]);
  const float* t = in_data(args.inputs[1]);
  float* d = out_data(args.outputs[0]);
  parallel_chunks(n, kParallelThreshold, [&](int64_t begin, int64_t end) {
    scaled_difference(p + begin, t + begin, d + begin, factor, end - begin);
  });
}

// (rows, classes) of softmax_cross_entropy's logits.
std::pair<int64_t, int64_t> loss_rows(const char* op, const lamina_view& z) {
  if (z.ndim < 1) throw sdk::Error("the logits need a class axis, got a scalar");
  const int64_t classes = z.shape[z.ndim - 1];
  return {classes ? sdk::view_size(z) / classes : 0, classes};
}

// Per row: max and Σ e^(z - max), in double.
struct RowExp {
  float max;
  double sum;
};
inline RowExp row_exp(const float* z, int64_t classes) {
  float m = z[0];
  for (int64_t j = 1; j < classes; ++j) m = std::max(m, z[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < classes; ++j) sum += double(std::exp(z[j] - m));
  return {m, sum};
}

ONEDNN_KERNEL(softmax_cross_entropy_kernel, "softmax_cross_entropy") {
  loss_operands(args, "softmax_cross_entropy", false);
  int64_t rows = 0, classes = 0;
  std::tie(rows, classes) = loss_rows("softmax_cross_entropy", args.inputs[0]);
  const float* z = in_data(args.inputs[0]);
  const float* t = in_data(args.inputs[1]);
  std::vector<double> row_loss(size_t(rows), 0.0);
  for_each_index(rows, rows * classes > kParallelThreshold / 8, [&](int64_t r) {
    const float* zr = z + r * classes;
    const float* tr = t + r * classes;
    if (classes == 0) return;
    const RowExp e = row_exp(zr, classes);
    const double shift = double(e.max) + std::log(e.sum);
    double loss = 0.0;
    for (int64_t j = 0; j < classes; ++j) loss -= double(tr[j]) * (double(zr[j]) - shift);
    row_loss[size_t(r)] = loss;
  });
  double total = 0.0;
  for (double v : row_loss) total += v;
  out_data(args.outputs[0])[0] = float(total / double(std::max<int64_t>(rows, 1)));
}

ONEDNN_KERNEL(softmax_cross_entropy_backward_kernel, "softmax_cross_entropy_backward") {
  loss_operands(args, "softmax_cross_entropy_backward", true);
  int64_t rows = 0, classes = 0;
  std::tie(rows, classes) = loss_rows("softmax_cross_entropy_backward", args.inputs[0]);
  const float* z = in_data(args.inputs[0]);
  const float* t = in_data(args.inputs[1]);
  float* dz = out_data(args.outputs[0]);
  const double factor = double(in_data(args.inputs[2])[0]) / double(std::max<int64_t>(rows, 1));
  for_each_index(rows, rows * classes > kParallelThreshold / 8, [&](int64_t r) {
    const float* zr = z + r * classes;
    const float* tr = t + r * classes;
    float* dr = dz + r * classes;
    if (classes == 0) return;
    const RowExp e = row_exp(zr, classes);
    double mass = 0.0;
    for (int64_t j = 0; j < classes; ++j) mass += tr[j];
    const double p_scale = mass / e.sum;
    for (int64_t j = 0; j < classes; ++j)
      dr[j] = float((double(std::exp(zr[j] - e.max)) * p_scale - double(tr[j])) * factor);
  });
}

}  // namespace
}  // namespace lamina::onednn
