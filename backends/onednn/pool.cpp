// max_pool2d, avg_pool2d and their backward passes on oneDNN pooling primitives, directly on the
// NHWC buffers (oneDNN's pooling has JIT kernels for channels-last, so nothing is reordered).
//
// Shapes: x (N,H,W,C) → y (N,OH,OW,C); attrs pool [ph,pw], strides [sh,sw] (default 1, as in the
// reference backend), pads [top,bottom,left,right]. oneDNN's semantics match lamina's: max pooling
// never picks a padded cell, pooling_avg_exclude_padding divides by the cells inside the input
// (TensorFlow's rule), and the max workspace records the first maximum of each window in
// row-major order.
//
// max_pool2d_backward receives x and dy but not the forward's workspace, so it reruns the
// forward in training mode to rebuild the workspace, then runs the backward primitive.
//
// A window lying wholly in the padding (a pad at least as large as the window) has no cells;
// lamina (the reference backend) makes its output 0 and passes it no gradient, which oneDNN's
// pooling does not promise, so such geometries, which Keras never produces, run on plain loops.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// The SDK's geometry, as oneDNN describes it.
struct PoolGeometry : sdk::PoolGeometry {
  memory::desc src() const { return {{n, c, h, w}, memory::data_type::f32, tag::nhwc}; }
  memory::desc dst() const { return {{n, c, oh, ow}, memory::data_type::f32, tag::nhwc}; }
  memory::dims kernel() const { return {kh, kw}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims pad_l() const { return {top, left}; }
  memory::dims pad_r() const { return {bottom, right}; }
  CacheKey key(const char* op) const {
    CacheKey k(op);
    for (int64_t v : {n, h, w, c, oh, ow, kh, kw, sh, sw, top, bottom, left, right}) k.add(v);
    return k;
  }
};

// The input cells of window (oh, ow): rows [r0, r1), columns [c0, c1), empty when in the padding.
struct Cells {
  int64_t r0, r1, c0, c1;
  int64_t count() const { return std::max<int64_t>(r1 - r0, 0) * std::max<int64_t>(c1 - c0, 0); }
};
Cells window_cells(const PoolGeometry& g, int64_t oh, int64_t ow) {
  return {std::max<int64_t>(oh * g.sh - g.top, 0), std::min<int64_t>(oh * g.sh - g.top + g.kh, g.h),
          std::max<int64_t>(ow * g.sw - g.left, 0), std::min<int64_t>(ow * g.sw - g.left + g.kw, g.w)};
}

// The loops, one image per thread at a time; each reads (N,H,W,C) x and writes (N,OH,OW,C) y or
// the reverse.
void pool_forward_loop(const PoolGeometry& g, bool max, const float* x, float* y) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    std::vector<double> sum(size_t(g.c));
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        Cells cells = window_cells(g, oh, ow);
        float* out = y + ((n * g.oh + oh) * g.ow + ow) * g.c;
        if (cells.count() == 0) {
          std::fill(out, out + g.c, 0.f);
          continue;
        }
        std::fill(sum.begin(), sum.end(), 0.0);
        bool first = true;
        for (int64_t r = cells.r0; r < cells.r1; ++r) {
          for (int64_t q = cells.c0; q < cells.c1; ++q) {
            const float* in = x + ((n * g.h + r) * g.w + q) * g.c;
            for (int64_t c = 0; c < g.c; ++c) {
              if (max)
                out[c] = first || in[c] > out[c] ? in[c] : out[c];
              else
                sum[c] += in[c];
            }
            first = false;
          }
        }
        if (!max)
          for (int64_t c = 0; c < g.c; ++c) out[c] = float(sum[c] / double(cells.count()));
      }
    }
  }
}

// x is read only for max pooling; dy goes to each window's first maximum, or evenly to its cells.
void pool_backward_loop(const PoolGeometry& g, bool max, const float* x, const float* dy, float* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    float* image = dx + n * g.h * g.w * g.c;
    std::fill(image, image + g.h * g.w * g.c, 0.f);
    std::vector<int64_t> best(size_t(g.c));
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        Cells cells = window_cells(g, oh, ow);
        if (cells.count() == 0) continue;
        const float* grad = dy + ((n * g.oh + oh) * g.ow + ow) * g.c;
        if (max) {
          bool first = true;
          for (int64_t r = cells.r0; r < cells.r1; ++r) {
            for (int64_t q = cells.c0; q < cells.c1; ++q) {
              int64_t at = ((n * g.h + r) * g.w + q) * g.c;
              for (int64_t c = 0; c < g.c; ++c)
                if (first || x[at + c] > x[best[c]]) best[c] = at + c;
              first = false;
            }
          }
          for (int64_t c = 0; c < g.c; ++c) dx[best[c]] += grad[c];
        } else {
          const float share = float(1.0 / double(cells.count()));
          for (int64_t r = cells.r0; r < cells.r1; ++r)
            for (int64_t q = cells.c0; q < cells.c1; ++q) {
              float* cell = image + (r * g.w + q) * g.c;
              for (int64_t c = 0; c < g.c; ++c) cell[c] += grad[c] * share;
            }
        }
      }
    }
  }
}

dnnl::pooling_forward::primitive_desc forward_pd(const PoolGeometry& g, const dnnl::engine& engine,
                                                 dnnl::prop_kind prop, dnnl::algorithm alg) {
  dnnl::pooling_forward::desc desc(prop, alg, g.src(), g.dst(), g.strides(), g.kernel(), g.pad_l(),
                                   g.pad_r());
  return dnnl::pooling_forward::primitive_desc(desc, engine);
}

dnnl::pooling_backward::primitive_desc backward_pd(const PoolGeometry& g, const dnnl::engine& engine,
                                                   dnnl::algorithm alg,
                                                   const dnnl::pooling_forward::primitive_desc& hint) {
  dnnl::pooling_backward::desc desc(alg, g.src(), g.dst(), g.strides(), g.kernel(), g.pad_l(), g.pad_r());
  return dnnl::pooling_backward::primitive_desc(desc, engine, hint);
}

struct ForwardEntry {
  dnnl::pooling_forward primitive;
  memory src, dst;
};

// max_pool2d / avg_pool2d: x → y
void pool_forward(const sdk::KernelArgs& args, const char* op, dnnl::algorithm alg) {
  expect_views(args, 1, 1);
  const lamina_view& x = args.inputs[0];
  const lamina_view& y = args.outputs[0];
  PoolGeometry g{sdk::pool_geometry(args.attrs, x, y)};
  if (sdk::view_size(y) == 0) return;
  if (g.has_empty_window()) {
    pool_forward_loop(g, alg == dnnl::algorithm::pooling_max, in_data(x), out_data(y));
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  SerialScope serial(g.n * g.h * g.w * g.c < kParallelThreshold);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<ForwardEntry>(g.key(op), [&] {
      auto pd = forward_pd(g, be.engine, dnnl::prop_kind::forward_inference, alg);
      auto e = std::make_shared<ForwardEntry>();
      e->primitive = dnnl::pooling_forward(pd);
      e->src = unbound_memory(g.src(), be.engine);
      e->dst = unbound_memory(g.dst(), be.engine);
      return e;
    });
    bind(entry->src, x.data);
    bind(entry->dst, y.data);
    entry->primitive.execute(be.stream, {{DNNL_ARG_SRC, entry->src}, {DNNL_ARG_DST, entry->dst}});
    be.stream.wait();
  });
}

ONEDNN_KERNEL(max_pool2d_kernel, "max_pool2d") {
  pool_forward(args, "max_pool2d", dnnl::algorithm::pooling_max);
}
ONEDNN_KERNEL(avg_pool2d_kernel, "avg_pool2d") {
  pool_forward(args, "avg_pool2d", dnnl::algorithm::pooling_avg_exclude_padding);
}

struct MaxBackwardEntry {
  dnnl::pooling_forward forward;
  dnnl::pooling_backward backward;
  memory src, dst, workspace;  // dst and workspace are owned scratch
  memory diff_dst, diff_src;
};

// Windows that tile the input without overlap or padding (Keras' MaxPooling2D default: pool = strides,
// "valid"): each input cell belongs to at most one window, so one pass finds every window's first
// maximum and writes dx, where the primitive path reruns the forward to rebuild its workspace and
// then scatters from it (three passes over x-sized memory, two parallel regions).
bool tiles_input(const PoolGeometry& g) {
  return g.sh == g.kh && g.sw == g.kw && g.top == 0 && g.bottom == 0 && g.left == 0 && g.right == 0;
}

LAMINA_INLINE void max_backward_row_body(const PoolGeometry& g, const float* x, const float* dy,
                                         float* __restrict dx, int64_t n, int64_t oh, int32_t* __restrict arg,
                                         float* __restrict best) {
  const int64_t C = g.c;
  for (int64_t ow = 0; ow < g.ow; ++ow) {
    const float* dyp = dy + ((n * g.oh + oh) * g.ow + ow) * C;
    for (int64_t k = 0; k < g.kh * g.kw; ++k) {
      const float* xp = x + ((n * g.h + oh * g.kh + k / g.kw) * g.w + ow * g.kw + k % g.kw) * C;
      if (k == 0) {
        for (int64_t c = 0; c < C; ++c) best[c] = xp[c], arg[c] = 0;
      } else {
        for (int64_t c = 0; c < C; ++c) {
          bool more = xp[c] > best[c];  // strictly: the first maximum in row-major order wins
          best[c] = more ? xp[c] : best[c];
          arg[c] = more ? int32_t(k) : arg[c];
        }
      }
    }
    for (int64_t k = 0; k < g.kh * g.kw; ++k) {
      float* dxp = dx + ((n * g.h + oh * g.kh + k / g.kw) * g.w + ow * g.kw + k % g.kw) * C;
      for (int64_t c = 0; c < C; ++c) dxp[c] = arg[c] == int32_t(k) ? dyp[c] : 0.f;
    }
  }
  // columns right of the last window get no gradient
  for (int64_t r = oh * g.kh; r < (oh + 1) * g.kh; ++r)
    for (int64_t col = g.ow * g.kw; col < g.w; ++col)
      std::fill_n(dx + ((n * g.h + r) * g.w + col) * C, C, 0.f);
}
LAMINA_VECTOR_DISPATCH(void, max_backward_row,
                       (const PoolGeometry& g, const float* x, const float* dy, float* __restrict dx,
                        int64_t n, int64_t oh, int32_t* __restrict arg, float* __restrict best),
                       (g, x, dy, dx, n, oh, arg, best))

void max_backward_tiled(const PoolGeometry& g, const float* x, const float* dy, float* dx) {
  for_each_index(g.n * g.oh, g.n * g.h * g.w * g.c > kParallelThreshold, [&](int64_t row) {
    constexpr int64_t kStack = 512;  // channels held on the stack; more go to the heap
    int32_t arg_stack[kStack];
    float best_stack[kStack];
    std::vector<int32_t> arg_heap(g.c > kStack ? size_t(g.c) : 0);
    std::vector<float> best_heap(g.c > kStack ? size_t(g.c) : 0);
    max_backward_row(g, x, dy, dx, row / g.oh, row % g.oh, g.c > kStack ? arg_heap.data() : arg_stack,
                     g.c > kStack ? best_heap.data() : best_stack);
  });
  // rows below the last window get no gradient
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t r = g.oh * g.kh; r < g.h; ++r) std::fill_n(dx + (n * g.h + r) * g.w * g.c, g.w * g.c, 0.f);
}

// max_pool2d_backward: x, dy → dx
ONEDNN_KERNEL(max_pool2d_backward_kernel, "max_pool2d_backward") {
  const char* op = "max_pool2d_backward";
  expect_views(args, 2, 1);
  const lamina_view& x = args.inputs[0];
  const lamina_view& dy = args.inputs[1];
  const lamina_view& dx = args.outputs[0];
  expect_same_size(x, "x", dx, "dx");
  PoolGeometry g{sdk::pool_geometry(args.attrs, x, dy, "x", "dy")};
  if (sdk::view_size(dx) == 0) return;
  if (sdk::view_size(dy) == 0) {
    std::memset(dx.data, 0, size_t(sdk::view_size(dx)) * sizeof(float));
    return;
  }
  if (g.has_empty_window()) {
    pool_backward_loop(g, /*max=*/true, in_data(x), in_data(dy), out_data(dx));
    return;
  }
  if (tiles_input(g)) {
    max_backward_tiled(g, in_data(x), in_data(dy), out_data(dx));
    return;
  }
  std::lock_guard lock(be.mutex);
  SerialScope serial(g.n * g.h * g.w * g.c < kParallelThreshold);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<MaxBackwardEntry>(g.key(op), [&] {
      auto fwd = forward_pd(g, be.engine, dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max);
      auto bwd = backward_pd(g, be.engine, dnnl::algorithm::pooling_max, fwd);
      auto e = std::make_shared<MaxBackwardEntry>();
      e->forward = dnnl::pooling_forward(fwd);
      e->backward = dnnl::pooling_backward(bwd);
      e->src = unbound_memory(g.src(), be.engine);
      e->dst = memory(fwd.dst_desc(), be.engine);
      e->workspace = memory(fwd.workspace_desc(), be.engine);
      e->diff_dst = unbound_memory(g.dst(), be.engine);
      e->diff_src = unbound_memory(g.src(), be.engine);
      return e;
    });
    bind(entry->src, x.data);
    bind(entry->diff_dst, dy.data);
    bind(entry->diff_src, dx.data);
    entry->forward.execute(
        be.stream,
        {{DNNL_ARG_SRC, entry->src}, {DNNL_ARG_DST, entry->dst}, {DNNL_ARG_WORKSPACE, entry->workspace}});
    entry->backward.execute(be.stream, {{DNNL_ARG_DIFF_DST, entry->diff_dst},
                                        {DNNL_ARG_WORKSPACE, entry->workspace},
                                        {DNNL_ARG_DIFF_SRC, entry->diff_src}});
    be.stream.wait();
  });
}

struct AvgBackwardEntry {
  dnnl::pooling_backward primitive;
  memory diff_dst, diff_src;
};

// avg_pool2d_backward: dy → dx
ONEDNN_KERNEL(avg_pool2d_backward_kernel, "avg_pool2d_backward") {
  const char* op = "avg_pool2d_backward";
  expect_views(args, 1, 1);
  const lamina_view& dy = args.inputs[0];
  const lamina_view& dx = args.outputs[0];
  PoolGeometry g{sdk::pool_geometry(args.attrs, dx, dy, "dx", "dy")};
  if (sdk::view_size(dx) == 0) return;
  if (sdk::view_size(dy) == 0) {
    std::memset(dx.data, 0, size_t(sdk::view_size(dx)) * sizeof(float));
    return;
  }
  if (g.has_empty_window()) {
    pool_backward_loop(g, /*max=*/false, nullptr, in_data(dy), out_data(dx));
    return;
  }
  std::lock_guard lock(be.mutex);
  SerialScope serial(g.n * g.h * g.w * g.c < kParallelThreshold);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<AvgBackwardEntry>(g.key(op), [&] {
      constexpr auto alg = dnnl::algorithm::pooling_avg_exclude_padding;
      auto fwd = forward_pd(g, be.engine, dnnl::prop_kind::forward_training, alg);
      auto e = std::make_shared<AvgBackwardEntry>();
      e->primitive = dnnl::pooling_backward(backward_pd(g, be.engine, alg, fwd));
      e->diff_dst = unbound_memory(g.dst(), be.engine);
      e->diff_src = unbound_memory(g.src(), be.engine);
      return e;
    });
    bind(entry->diff_dst, dy.data);
    bind(entry->diff_src, dx.data);
    entry->primitive.execute(be.stream,
                             {{DNNL_ARG_DIFF_DST, entry->diff_dst}, {DNNL_ARG_DIFF_SRC, entry->diff_src}});
    be.stream.wait();
  });
}

}  // namespace
}  // namespace lamina::onednn
