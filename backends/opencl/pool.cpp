// 2-D max and average pooling over NHWC activations, with their gradients.
//
// Window (oh, ow) covers input rows oh·SH − top + [0, PH) and columns ow·SW − left + [0, PW); only
// the cells inside the input take part. A window lying wholly in the padding has no cells: its output
// is 0 and it passes no gradient. Gradients never need atomics: where windows are disjoint (the
// usual 2x2, stride 2) each window writes its own cells; where they overlap, each dx element gathers
// from the windows containing it, in a fixed order.
#include <string>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// Compiled per geometry (-D PH PW SH SW C VW), so window loops have constant trip counts. A
// work-item handles VW neighbouring channels as one vector (C/VW vectors per pixel); work-items span
// a 3-D range (C/VW, columns, N*rows) of the tensor they write, so none divides more than once.
// Sums accumulate in double where the device has it, as on the reference backend.
const std::string kSource = std::string(kVectorPreamble) + kAccumulatorPreamble + R"CL(
// ivec_t: per-lane conditions (comparisons give lanes of -1/0 for vectors, 1/0 for scalars);
// avec_t: vec_t in the accumulation type, ACC_VEC and FROM_ACC converting to and from it.
#if VW == 1
typedef int ivec_t;
typedef acc_t avec_t;
#define SELECT(a, b, c) ((c) ? (b) : (a))
#define ACC_VEC(v) ((acc_t)(v))
#define FROM_ACC(v) ((float)(v))
#else
typedef CAT(int, VW) ivec_t;
typedef CAT(ACC, VW) avec_t;
#define SELECT(a, b, c) select((a), (b), (c))
#define ACC_VEC(v) CAT(CAT(convert_, ACC), VW)(v)
#define FROM_ACC(v) CAT(convert_float, VW)(v)
#endif

typedef struct {
  int N, H, W;    // x (N,H,W,C)
  int OH, OW;     // y (N,OH,OW,C)
  int top, left;  // padding before the first row and column
} Pool;

// Window (oh, ow) of image n, channels c0 + [0, VW): each channel's maximum over the window's cells
// inside the input and, in *where, the index in x of the pixel-channel c0 of the first cell holding
// it (row-major scan, ties to the earlier cell, as max_pool2d_backward requires). For a window with
// no cells: 0, and -1 in every lane.
vec_t window_max(__global const float* x, const Pool* p, int n, int oh, int ow, int c0, ivec_t* where) {
  const int r0 = oh * SH - p->top, q0 = ow * SW - p->left;
  vec_t best = (vec_t)(0.0f);
  ivec_t best_at = (ivec_t)(-1);
  for (int i = 0; i < PH; ++i) {
    const int r = r0 + i;
    if (r < 0 || r >= p->H) continue;
    for (int j = 0; j < PW; ++j) {
      const int q = q0 + j;
      if (q < 0 || q >= p->W) continue;
      const int at = ((n * p->H + r) * p->W + q) * C + c0;
      const vec_t v = VLOAD(x + at);
      // the first cell seeds every lane; later ones win only when strictly greater
      const ivec_t take = (best_at < 0) | (v > best);
      best = SELECT(best, v, take);
      best_at = SELECT(best_at, (ivec_t)(at), take);
    }
  }
  *where = best_at;
  return best;
}

// The number of cells of window (oh, ow) inside the input.
int cell_count(const Pool* p, int oh, int ow) {
  const int r0 = oh * SH - p->top, q0 = ow * SW - p->left;
  const int rows = min(r0 + PH, p->H) - max(r0, 0), cols = min(q0 + PW, p->W) - max(q0, 0);
  return rows > 0 && cols > 0 ? rows * cols : 0;
}

// The windows containing input cell (ih, iw): output rows [*oh0, *oh1), columns [*ow0, *ow1).
void windows_over(const Pool* p, int ih, int iw, int* oh0, int* oh1, int* ow0, int* ow1) {
  // oh·SH − top ≤ ih < oh·SH − top + PH
  const int lo_h = ih + p->top - PH + 1, lo_w = iw + p->left - PW + 1;
  *oh0 = lo_h > 0 ? (lo_h + SH - 1) / SH : 0;
  *oh1 = min((ih + p->top) / SH + 1, p->OH);
  *ow0 = lo_w > 0 ? (lo_w + SW - 1) / SW : 0;
  *ow1 = min((iw + p->left) / SW + 1, p->OW);
}

// Forward kernels: work-items (C/VW, OW, N*OH) over y.
__kernel void max_pool_forward(__global const float* x, int x_off, __global float* y, int y_off, Pool p) {
  const int c0 = get_global_id(0) * VW, ow = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || ow >= p.OW || row >= p.N * p.OH) return;
  const int n = row / p.OH, oh = row - n * p.OH;
  ivec_t where;
  VSTORE(window_max(x + x_off, &p, n, oh, ow, c0, &where), y + y_off + (row * p.OW + ow) * C + c0);
}

__kernel void avg_pool_forward(__global const float* x, int x_off, __global float* y, int y_off, Pool p) {
  const int c0 = get_global_id(0) * VW, ow = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || ow >= p.OW || row >= p.N * p.OH) return;
  const int n = row / p.OH, oh = row - n * p.OH;
  const int r0 = oh * SH - p.top, q0 = ow * SW - p.left;
  avec_t sum = (avec_t)(0);
  for (int i = 0; i < PH; ++i) {
    const int r = r0 + i;
    if (r < 0 || r >= p.H) continue;
    for (int j = 0; j < PW; ++j) {
      const int q = q0 + j;
      if (q >= 0 && q < p.W) sum += ACC_VEC(VLOAD(x + x_off + ((n * p.H + r) * p.W + q) * C + c0));
    }
  }
  const int count = cell_count(&p, oh, ow);
  VSTORE(count ? FROM_ACC(sum / (acc_t)count) : (vec_t)(0.0f), y + y_off + (row * p.OW + ow) * C + c0);
}

// Backward kernels where windows do not overlap (strides at least the window): every input cell
// lies in at most one window, so each window's work-item writes all of its cells in dx, and the
// host zeroes dx first for the cells in no window. Work-items (C/VW, OW, N*OH) over dy.
__kernel void max_pool_backward_windows(__global const float* x, int x_off, __global const float* dy, int dy_off,
                                        __global float* dx, int dx_off, Pool p) {
  const int c0 = get_global_id(0) * VW, ow = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || ow >= p.OW || row >= p.N * p.OH) return;
  const int n = row / p.OH, oh = row - n * p.OH;
  ivec_t where;
  window_max(x + x_off, &p, n, oh, ow, c0, &where);
  const vec_t g = VLOAD(dy + dy_off + (row * p.OW + ow) * C + c0);
  const int r0 = oh * SH - p.top, q0 = ow * SW - p.left;
  for (int i = 0; i < PH; ++i) {
    const int r = r0 + i;
    if (r < 0 || r >= p.H) continue;
    for (int j = 0; j < PW; ++j) {
      const int q = q0 + j;
      if (q < 0 || q >= p.W) continue;
      const int at = ((n * p.H + r) * p.W + q) * C + c0;  // x and dx share a shape
      VSTORE(SELECT((vec_t)(0.0f), g, where == at), dx + dx_off + at);
    }
  }
}

__kernel void avg_pool_backward_windows(__global const float* dy, int dy_off, __global float* dx, int dx_off,
                                        Pool p) {
  const int c0 = get_global_id(0) * VW, ow = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || ow >= p.OW || row >= p.N * p.OH) return;
  const int n = row / p.OH, oh = row - n * p.OH;
  const int count = cell_count(&p, oh, ow);
  if (count == 0) return;
  const vec_t g = FROM_ACC(ACC_VEC(VLOAD(dy + dy_off + (row * p.OW + ow) * C + c0)) / (acc_t)count);
  const int r0 = oh * SH - p.top, q0 = ow * SW - p.left;
  for (int i = 0; i < PH; ++i) {
    const int r = r0 + i;
    if (r < 0 || r >= p.H) continue;
    for (int j = 0; j < PW; ++j) {
      const int q = q0 + j;
      if (q >= 0 && q < p.W) VSTORE(g, dx + dx_off + ((n * p.H + r) * p.W + q) * C + c0);
    }
  }
}

// Backward kernels for overlapping windows: each work-item owns VW channels of one dx cell and
// gathers from the windows containing it, in window order. Work-items (C/VW, W, N*H) over dx.
__kernel void max_pool_backward_cells(__global const float* x, int x_off, __global const float* dy, int dy_off,
                                      __global float* dx, int dx_off, Pool p) {
  const int c0 = get_global_id(0) * VW, iw = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || iw >= p.W || row >= p.N * p.H) return;
  const int n = row / p.H, ih = row - n * p.H;
  const int self = (row * p.W + iw) * C + c0;
  int oh0, oh1, ow0, ow1;
  windows_over(&p, ih, iw, &oh0, &oh1, &ow0, &ow1);
  avec_t sum = (avec_t)(0);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = ow0; ow < ow1; ++ow) {
      ivec_t where;
      window_max(x + x_off, &p, n, oh, ow, c0, &where);
      const vec_t g = VLOAD(dy + dy_off + ((n * p.OH + oh) * p.OW + ow) * C + c0);
      sum += ACC_VEC(SELECT((vec_t)(0.0f), g, where == self));
    }
  VSTORE(FROM_ACC(sum), dx + dx_off + self);
}

__kernel void avg_pool_backward_cells(__global const float* dy, int dy_off, __global float* dx, int dx_off, Pool p) {
  const int c0 = get_global_id(0) * VW, iw = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || iw >= p.W || row >= p.N * p.H) return;
  const int n = row / p.H, ih = row - n * p.H;
  int oh0, oh1, ow0, ow1;
  windows_over(&p, ih, iw, &oh0, &oh1, &ow0, &ow1);
  avec_t sum = (avec_t)(0);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = ow0; ow < ow1; ++ow)  // each of these windows holds (ih, iw), so its count is ≥ 1
      sum += ACC_VEC(VLOAD(dy + dy_off + ((n * p.OH + oh) * p.OW + ow) * C + c0)) / (acc_t)cell_count(&p, oh, ow);
  VSTORE(FROM_ACC(sum), dx + dx_off + (row * p.W + iw) * C + c0);
}
)CL";

// Must match the OpenCL C struct above.
struct Pool {
  cl_int N, H, W;
  cl_int OH, OW;
  cl_int top, left;
};

// The geometry of one pooling call: the struct its kernels take and the -D options they are built
// with.
struct PoolCall {
  Pool p;
  int vw;  // channels per work-item
  std::string options;
  bool disjoint;  // windows do not overlap
};

// `x` and `y` are the views shaped like the forward op's input and output.
PoolCall pool_sizes(const sdk::KernelArgs& args, const lamina_view& x, const char* x_name,
                    const lamina_view& y, const char* y_name) {
  const sdk::PoolGeometry g = int_window(pool_geometry(args.attrs, x, y, x_name, y_name));
  PoolCall call;
  call.p = {as_int(x.shape[0]), as_int(x.shape[1]), as_int(x.shape[2]), as_int(y.shape[1]),
            as_int(y.shape[2]), as_int(g.top),      as_int(g.left)};
  call.vw = vector_width(x.shape[3]);
  call.options =
      defines({{"PH", g.kh}, {"PW", g.kw}, {"SH", g.sh}, {"SW", g.sw}, {"C", x.shape[3]}, {"VW", call.vw}});
  call.disjoint = g.sh >= g.kh && g.sw >= g.kw;
  return call;
}

// Runs pool kernel `name` over the 3-D range (C/VW, columns, N*rows) of the tensor shaped `over`.
void run(Backend& b, const PoolCall& call, const char* name, const lamina_view& over, auto... kernel_args) {
  cl_kernel k = b.kernel("pool", kSource.c_str(), call.options, name);
  set_args(k, kernel_args..., call.p);
  const size_t vectors = size_t(over.shape[3] / call.vw);
  size_t local0 = 1;
  while (local0 < 16 && local0 < vectors) local0 *= 2;
  launch(b, k, {vectors, size_t(over.shape[2]), size_t(over.shape[0] * over.shape[1])}, {local0, 1, 1});
}

void zero(Backend& b, const lamina_view& v) {
  const cl_float zero = 0.0f;
  check_cl(clEnqueueFillBuffer(b.queue, static_cast<cl_mem>(v.data), &zero, sizeof(zero), v.offset,
                               size_t(sdk::view_size(v)) * sizeof(float), 0, nullptr, nullptr),
           "clEnqueueFillBuffer");
}

}  // namespace

OPENCL_KERNEL(max_pool2d) {
  // x is (N,H,W,C), y is (N,OH,OW,C); y[n,oh,ow,c] = max of x[n,ih,iw,c] over the window's cells
  expect_arity(args, {"x"}, {"y"});
  const PoolCall call = pool_sizes(args, args.inputs[0], "x", args.outputs[0], "y");
  run(backend_of(args), call, "max_pool_forward", args.outputs[0], device_tensor(args.inputs[0]),
      device_tensor(args.outputs[0]));
}

OPENCL_KERNEL(max_pool2d_backward) {
  // x is (N,H,W,C), dy is (N,OH,OW,C), dx is x's shape
  // each dy[n,oh,ow,c] goes to the first cell of its window (row-major) holding the window's maximum
  expect_arity(args, {"x", "dy"}, {"dx"});
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "dx");
  const PoolCall call = pool_sizes(args, args.inputs[0], "x", args.inputs[1], "dy");
  Backend& b = backend_of(args);
  const auto x = device_tensor(args.inputs[0]), dy = device_tensor(args.inputs[1]),
             dx = device_tensor(args.outputs[0]);
  if (call.disjoint) {
    zero(b, args.outputs[0]);
    run(b, call, "max_pool_backward_windows", args.inputs[1], x, dy, dx);
  } else {
    run(b, call, "max_pool_backward_cells", args.outputs[0], x, dy, dx);
  }
}

OPENCL_KERNEL(avg_pool2d) {
  // x is (N,H,W,C), y is (N,OH,OW,C); y[n,oh,ow,c] = mean of x[n,ih,iw,c] over the window's cells,
  // so padding is excluded from the count
  expect_arity(args, {"x"}, {"y"});
  const PoolCall call = pool_sizes(args, args.inputs[0], "x", args.outputs[0], "y");
  run(backend_of(args), call, "avg_pool_forward", args.outputs[0], device_tensor(args.inputs[0]),
      device_tensor(args.outputs[0]));
}

OPENCL_KERNEL(avg_pool2d_backward) {
  // dy is (N,OH,OW,C), dx is (N,H,W,C); each dy[n,oh,ow,c] / count goes to every cell of its window
  expect_arity(args, {"dy"}, {"dx"});
  const PoolCall call = pool_sizes(args, args.outputs[0], "dx", args.inputs[0], "dy");
  Backend& b = backend_of(args);
  const auto dy = device_tensor(args.inputs[0]), dx = device_tensor(args.outputs[0]);
  if (call.disjoint) {
    zero(b, args.outputs[0]);
    run(b, call, "avg_pool_backward_windows", args.inputs[0], dy, dx);
  } else {
    run(b, call, "avg_pool_backward_cells", args.outputs[0], dy, dx);
  }
}

}  // namespace lamina::opencl
