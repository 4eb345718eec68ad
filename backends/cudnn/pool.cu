// max_pool2d, avg_pool2d and their backward passes over NHWC activations.
//
// Window (oh, ow) covers input rows oh·sh − top + [0, ph) and columns ow·sw − left + [0, pw); only
// cells inside the input take part. A window lying wholly in the padding has no cells: its output is
// 0 and it passes no gradient. cuDNN runs the forward passes where its semantics are exactly these
// (choose_pool_path: max pooling without padding, average pooling with symmetric pads); lamina's
// kernels below run every other case and both backward passes. The backward kernels gather: one
// thread per dx element visits the windows that cover it, so no atomics are needed and the result
// does not depend on scheduling.
#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// The cells of window (oh, ow) inside the input: rows [r0, r1), columns [c0, c1).
struct Cells {
  int64_t r0, r1, c0, c1;
};

__device__ Cells window_cells(const PoolGeometry& g, int64_t oh, int64_t ow) {
  const int64_t r = oh * g.sh - g.top, c = ow * g.sw - g.left;
  return {max(r, int64_t(0)), min(r + g.kh, g.h), max(c, int64_t(0)), min(c + g.kw, g.w)};
}

// x (N,H,W,C) → y (N,OH,OW,C); i indexes y, channels fastest so neighbouring threads read
// neighbouring channels.
template <bool Max>
__global__ void pool_forward(const float* __restrict__ x, float* __restrict__ y, int64_t n, PoolGeometry g) {
  GRID_STRIDE_LOOP(i, n) {
    const int64_t c = i % g.c;
    int64_t rest = i / g.c;
    const int64_t ow = rest % g.ow;
    rest /= g.ow;
    const int64_t oh = rest % g.oh;
    const int64_t image = rest / g.oh;
    const Cells cells = window_cells(g, oh, ow);
    const float* x_image = x + image * g.h * g.w * g.c + c;
    float acc = 0.0f;
    bool seeded = false;
    for (int64_t r = cells.r0; r < cells.r1; ++r)
      for (int64_t q = cells.c0; q < cells.c1; ++q) {
        const float v = x_image[(r * g.w + q) * g.c];
        if (Max)
          acc = !seeded || v > acc ? v : acc;  // the first cell seeds the maximum: padding never wins
        else
          acc += v;
        seeded = true;
      }
    const int64_t count = max(cells.r1 - cells.r0, int64_t(0)) * max(cells.c1 - cells.c0, int64_t(0));
    y[i] = !seeded ? 0.0f : Max ? acc : acc / float(count);
  }
}

// The first and last window index along one axis whose window covers input index `at`:
// o·s − pad ≤ at < o·s − pad + k, clamped to [0, extent).
__device__ void covering(int64_t at, int64_t pad, int64_t k, int64_t s, int64_t extent, int64_t& first,
                         int64_t& last) {
  const int64_t lowest = at + pad - k + 1;  // o·s ≥ lowest
  first = lowest > 0 ? (lowest + s - 1) / s : 0;
  last = min((at + pad) / s, extent - 1);
}

// x (N,H,W,C), dy (N,OH,OW,C) → dx (N,H,W,C). Max: dx at a cell sums dy over the windows whose first
// maximum (row-major, ties keep the earlier cell) is that cell. Average: dx sums dy / count over
// the windows covering the cell. i indexes dx.
template <bool Max>
__global__ void pool_backward(const float* __restrict__ x, const float* __restrict__ dy,
                              float* __restrict__ dx, int64_t n, PoolGeometry g) {
  GRID_STRIDE_LOOP(i, n) {
    const int64_t c = i % g.c;
    int64_t rest = i / g.c;
    const int64_t col = rest % g.w;
    rest /= g.w;
    const int64_t row = rest % g.h;
    const int64_t image = rest / g.h;
    int64_t oh0, oh1, ow0, ow1;
    covering(row, g.top, g.kh, g.sh, g.oh, oh0, oh1);
    covering(col, g.left, g.kw, g.sw, g.ow, ow0, ow1);
    const float* x_image = Max ? x + image * g.h * g.w * g.c + c : nullptr;
    const float* dy_image = dy + image * g.oh * g.ow * g.c + c;
    float acc = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Cells cells = window_cells(g, oh, ow);
        const float grad = dy_image[(oh * g.ow + ow) * g.c];
        if (Max) {
          int64_t best_r = cells.r0, best_q = cells.c0;
          float best = x_image[(best_r * g.w + best_q) * g.c];
          for (int64_t r = cells.r0; r < cells.r1; ++r)
            for (int64_t q = cells.c0; q < cells.c1; ++q) {
              const float v = x_image[(r * g.w + q) * g.c];
              if (v > best) best = v, best_r = r, best_q = q;
            }
          if (best_r == row && best_q == col) acc += grad;
        } else {
          acc += grad / float((cells.r1 - cells.r0) * (cells.c1 - cells.c0));
        }
      }
    dx[i] = acc;
  }
}

// cuDNN's pooling forward over the NHWC buffers; false when cuDNN refuses the geometry (then
// lamina's kernel runs, and cuDNN is not asked again).
bool cudnn_pool_forward(Backend& be, const PoolGeometry& g, bool max, const float* x, float* y) {
  if (!be.cudnn_pooling_ok) return false;
  set_pooling(be.pool, g, max);
  set_tensor(be.tensor_a, Layout::nhwc, g.n, g.c, g.h, g.w);
  set_tensor(be.tensor_b, Layout::nhwc, g.n, g.c, g.oh, g.ow);
  const Dims4 want{int(g.n), int(g.c), int(g.oh), int(g.ow)};
  if (!(pooling_output(be.pool, be.tensor_a) == want)) return false;
  const float one = 1.0f, zero = 0.0f;
  const cudnnStatus_t status =
      cudnnPoolingForward(be.cudnn, be.pool, &one, be.tensor_a, x, &zero, be.tensor_b, y);
  if (status == CUDNN_STATUS_SUCCESS) return true;
  if (status != CUDNN_STATUS_NOT_SUPPORTED && status != CUDNN_STATUS_BAD_PARAM)
    check_cudnn(status, "cudnnPoolingForward");
  be.cudnn_pooling_ok = false;
  return false;
}

template <bool Max>
void forward(const sdk::KernelArgs& args, Backend& be) {
  // x (N,H,W,C) → y (N,OH,OW,C)
  expect_views(args, 1, 1);
  const PoolGeometry g = pool_geometry(args.attrs, args.inputs[0], args.outputs[0]);
  const float* x = dev(args.inputs[0]);
  float* y = dev(args.outputs[0]);
  if (choose_pool_path(g, Max, false) == PoolPath::cudnn && cudnn_pool_forward(be, g, Max, x, y)) return;
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  pool_forward<Max><<<l.blocks, l.threads, 0, be.stream>>>(x, y, n, g);
}

CUDNN_KERNEL(op_max_pool2d, "max_pool2d") {
  forward<true>(args, be);
}
CUDNN_KERNEL(op_avg_pool2d, "avg_pool2d") {
  forward<false>(args, be);
}

CUDNN_KERNEL(op_max_pool2d_backward, "max_pool2d_backward") {
  // x (N,H,W,C), dy (N,OH,OW,C) → dx (N,H,W,C)
  expect_views(args, 2, 1);
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "dx");
  const PoolGeometry g = pool_geometry(args.attrs, args.inputs[0], args.inputs[1]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  pool_backward<true><<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[0]), dev(args.inputs[1]),
                                                             dev(args.outputs[0]), n, g);
}

CUDNN_KERNEL(op_avg_pool2d_backward, "avg_pool2d_backward") {
  // dy (N,OH,OW,C) → dx (N,H,W,C)
  expect_views(args, 1, 1);
  const PoolGeometry g = pool_geometry(args.attrs, args.outputs[0], args.inputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  pool_backward<false>
      <<<l.blocks, l.threads, 0, be.stream>>>(nullptr, dev(args.inputs[0]), dev(args.outputs[0]), n, g);
}

}  // namespace
}  // namespace lamina::cudnn
