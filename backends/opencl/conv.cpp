// 2-D convolution (cross-correlation), NHWC activations and HWIO kernels, with its two gradients,
// dilation and groups, as direct kernels: no im2col matrix is materialised, which on a CPU device
// would cost more memory traffic than the arithmetic it feeds.
//
// The workhorse is one "valid" correlation kernel (no padding, every tap inside the input):
// - conv2d runs it on x, first copied into a zero-bordered buffer when the op pads; conv2d_bias
//   adds the bias and applies the activation to the sums before storing them;
// - conv2d_backward_data with unit strides is the same correlation of dy, bordered by KH-1 rows and
//   KW-1 columns of zeros, with the filter flipped and its channel axes swapped. Other strides, and
//   any dilation or groups, use a gather kernel of their own.
// Dilation and groups are defines like the rest of the geometry (DH DW, CG input channels and OG
// output channels per group): a work-item's vector of output channels lies within one group, so it
// reads that group's input channels only.
// conv2d_backward_filter sums over the batch in one kernel; conv2d_backward_filter_bias adds the
// column sums of dy (reduce.cpp's sum_rows) for db.
//
// Kernels are compiled per geometry (-D KH KW CI CO SH SW and the blocking), so loops over taps and
// channels have constant trip counts the compiler unrolls and vectorises; batch and spatial sizes
// stay run-time arguments, so a last, smaller batch reuses the program. A work-item accumulates a
// register tile: PB neighbouring pixels of one row times a vector of VW channels, loading each
// input value once and broadcasting it against the vector.
#include <algorithm>
#include <string>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// Valid correlation: in (N,IH,IW,CIN), f (KH,KW,CG,CO) → out (N,OH,OW,CO), with CIN = CG·CO/OG
// (groups of CG input and OG output channels),
// out[n,oh,ow,o] = ACTIVATE(Σ over (di,dj,c < CG) of in[n, oh·SH + di·DH, ow·SW + dj·DW, g·CG + c]
//                           · f[di,dj,c,o] + bias[o] when BIAS), g = o / OG.
// Rows of `in` outside [row_lo, row_hi) are known to be zero (a border the host added) and skipped.
// Work-items (ceil(OW/PB), N*OH, CO/VW).
const std::string kValidSource = std::string(kVectorPreamble) + kActivationPreamble + R"CL(
__kernel void correlate(__global const float* in, int in_off, __global const float* f, int f_off,
                        __global const float* bias, int bias_off, __global float* out, int out_off, int IH,
                        int IW, int OH, int OW, int row_lo, int row_hi) {
  const int ow0 = get_global_id(0) * PB, row = get_global_id(1), o0 = get_global_id(2) * VW;
  if (ow0 >= OW) return;
  const int n = row / OH, oh = row - n * OH;
  in += in_off + ((n * IH + oh * SH) * IW + ow0 * SW) * CIN + (o0 / OG) * CG;
  f += f_off + o0;
  vec_t acc[PB];
  for (int p = 0; p < PB; ++p) acc[p] = (vec_t)(0.0f);
  // the taps whose row oh·SH + di·DH lies in [row_lo, row_hi)
  const int di_lo = max((row_lo - oh * SH + DH - 1) / DH, 0);
  const int di_hi = min((row_hi - oh * SH + DH - 1) / DH, KH);
  if (ow0 + PB <= OW) {
    for (int di = di_lo; di < di_hi; ++di)
      for (int dj = 0; dj < KW; ++dj) {
        __global const float* ip = in + (di * DH * IW + dj * DW) * CIN;
        __global const float* fp = f + (di * KW + dj) * CG * CO;
        for (int c = 0; c < CG; ++c) {
          const vec_t fv = VLOAD(fp + c * CO);
#pragma unroll
          for (int p = 0; p < PB; ++p) acc[p] = fma((vec_t)(ip[p * SW * CIN + c]), fv, acc[p]);
        }
      }
  } else {  // the row's last, partial tile
    for (int p = 0; p < OW - ow0; ++p)
      for (int di = di_lo; di < di_hi; ++di)
        for (int dj = 0; dj < KW; ++dj) {
          __global const float* ip = in + (di * DH * IW + p * SW + dj * DW) * CIN;
          __global const float* fp = f + (di * KW + dj) * CG * CO;
          for (int c = 0; c < CG; ++c) acc[p] = fma((vec_t)(ip[c]), VLOAD(fp + c * CO), acc[p]);
        }
  }
#if BIAS
  const vec_t b = VLOAD(bias + bias_off + o0);
  for (int p = 0; p < PB; ++p) acc[p] += b;
#endif
  __global float* op = out + out_off + (row * OW + ow0) * CO + o0;
  for (int p = 0; p < PB; ++p)
    if (ow0 + p < OW) VSTORE(ACTIVATE(acc[p]), op + p * CO);
}
)CL";

// Helpers without a geometry of their own, built once.
const char* const kHelperSource = R"CL(
// out (N,OH,OW,C) = in (N,IH,IW,C) moved down by `top` rows and right by `left` columns (either may
// be negative), zero where nothing lands. Work-items (C, OW, N*OH).
__kernel void shift(__global const float* in, int in_off, __global float* out, int IH, int IW, int C, int OH,
                    int OW, int rows, int top, int left) {
  const int c = get_global_id(0), ow = get_global_id(1), row = get_global_id(2);
  if (c >= C || ow >= OW || row >= rows) return;
  const int n = row / OH, ih = row - n * OH - top, iw = ow - left;
  out[(row * OW + ow) * C + c] =
      ih >= 0 && ih < IH && iw >= 0 && iw < IW ? in[in_off + ((n * IH + ih) * IW + iw) * C + c] : 0.0f;
}

// ft (KH,KW,O,C) from f (KH,KW,C,O): the channel axes swapped and, with `flip`, the taps reversed.
__kernel void transpose_filter(__global const float* f, int f_off, __global float* ft, int KH, int KW, int C,
                               int O, int flip) {
  const int i = get_global_id(0);  // index into ft
  if (i >= KH * KW * C * O) return;
  const int c = i % C, o = (i / C) % O, tap = i / (C * O);
  const int source_tap = flip ? KH * KW - 1 - tap : tap;
  ft[i] = f[f_off + (source_tap * C + c) * O + o];
}
)CL";

// conv2d_backward_data for any strides, dilation and groups: dy (N,OH,OW,O), wt (KH,KW,O,CG) → dx
// (N,H,W,C), groups of CG input and OG output channels.
// dx[n,ih,iw,g·CG + k] = Σ over (di,dj) with ih = oh·SH + di·DH − top and iw = ow·SW + dj·DW − left
// for some in-range (oh, ow), and over the o of group g, of dy[n,oh,ow,o] · w[di,dj,k,o].
// Work-items (ceil(W/PB), N*H, C/VW); VW divides CG.
const std::string kGatherSource = std::string(kVectorPreamble) + R"CL(
__kernel void conv2d_backward_data(__global const float* dy, int dy_off, __global const float* wt,
                                   __global float* dx, int dx_off, int H, int W, int OH, int OW, int top,
                                   int left) {
  const int iw0 = get_global_id(0) * PB, row = get_global_id(1), c0 = get_global_id(2) * VW;
  if (iw0 >= W) return;
  const int n = row / H, ih = row - n * H;
  const int group = c0 / CG;
  dy += dy_off + group * OG;
  wt += group * OG * CG + (c0 - group * CG);
  vec_t acc[PB];
  for (int p = 0; p < PB; ++p) acc[p] = (vec_t)(0.0f);
  for (int di = 0; di < KH; ++di) {
    const int th = ih + top - di * DH;  // = oh·SH when output row oh reads input row ih at tap di
    if (th < 0 || th % SH != 0 || th / SH >= OH) continue;
    __global const float* dy_row = dy + (n * OH + th / SH) * OW * O;
    for (int dj = 0; dj < KW; ++dj) {
      __global const float* wt_tap = wt + (di * KW + dj) * O * CG;
      for (int p = 0; p < PB; ++p) {
        const int tw = iw0 + p + left - dj * DW;
        if (iw0 + p >= W || tw < 0 || tw % SW != 0 || tw / SW >= OW) continue;
        __global const float* dp = dy_row + (tw / SW) * O;
        for (int o = 0; o < OG; ++o) acc[p] = fma((vec_t)(dp[o]), VLOAD(wt_tap + o * CG), acc[p]);
      }
    }
  }
  __global float* dx_row = dx + dx_off + (row * W + iw0) * C + c0;
  for (int p = 0; p < PB; ++p)
    if (iw0 + p < W) VSTORE(acc[p], dx_row + p * C);
}
)CL";

// conv2d_backward_filter: x (N,H,W,C), dy (N,OH,OW,O) → dw (KH,KW,CG,O), groups of CG input and OG
// output channels.
// dw[di,dj,k,o] = Σ over (n,oh,ow) of x[n, oh·SH + di·DH − top, ow·SW + dj·DW − left, g·CG + k]
//                 · dy[n,oh,ow,o], g = o / OG.
// Work-items (KH*KW, CG/CB, O/(NV*VW)): one tap, CB input channels × NV vectors of VW output
// channels (all in one group), each summing over the whole batch.
const std::string kFilterSource = std::string(kVectorPreamble) + R"CL(
__kernel void conv2d_backward_filter(__global const float* x, int x_off, __global const float* dy, int dy_off,
                                     __global float* dw, int dw_off, int N, int H, int W, int OH, int OW,
                                     int top, int left) {
  const int tap = get_global_id(0), c0 = get_global_id(1) * CB, o0 = get_global_id(2) * NV * VW;
  if (tap >= KH * KW) return;
  const int di = tap / KW, dj = tap - di * KW;
  x += x_off + (o0 / OG) * CG + c0;
  dy += dy_off + o0;
  // the output columns whose input column ow·SW + dj·DW − left lies inside the row
  const int ow_lo = left > dj * DW ? (left - dj * DW + SW - 1) / SW : 0;
  const int last = W - 1 + left - dj * DW;
  const int ow_hi = last < 0 ? 0 : min(OW, last / SW + 1);
  vec_t acc[CB][NV];
  for (int k = 0; k < CB; ++k)
    for (int v = 0; v < NV; ++v) acc[k][v] = (vec_t)(0.0f);
  for (int n = 0; n < N; ++n) {
    for (int oh = 0; oh < OH; ++oh) {
      const int ih = oh * SH + di * DH - top;
      if (ih < 0 || ih >= H) continue;
      __global const float* x_row = x + (n * H + ih) * W * C;
      __global const float* dy_row = dy + (n * OH + oh) * OW * O;
      for (int ow = ow_lo; ow < ow_hi; ++ow) {
        vec_t g[NV];
#pragma unroll
        for (int v = 0; v < NV; ++v) g[v] = VLOAD(dy_row + ow * O + v * VW);
        __global const float* xp = x_row + (ow * SW + dj * DW - left) * C;
#pragma unroll
        for (int k = 0; k < CB; ++k) {
          const vec_t xk = (vec_t)(xp[k]);
#pragma unroll
          for (int v = 0; v < NV; ++v) acc[k][v] = fma(xk, g[v], acc[k][v]);
        }
      }
    }
  }
  __global float* out = dw + dw_off + (tap * CG + c0) * O + o0;
  for (int k = 0; k < CB; ++k)
    for (int v = 0; v < NV; ++v) VSTORE(acc[k][v], out + k * O + v * VW);
}
)CL";

using Conv = sdk::ConvGeometry;

// Pixels per work-item along a row of `width`: a divisor of the width (no partial tiles) large
// enough to reuse each vector of weights several times, small enough to keep the tile in registers.
int64_t pixels_per_item(int64_t width, int vector_width) {
  const int64_t most = vector_width >= 8 ? 10 : 16;
  for (int64_t p = std::min(most, width); p >= 4; --p)
    if (width % p == 0) return p;
  return width < 4 ? width : 8;
}

// A tensor given as a buffer and an element offset, with its NHWC sizes.
struct Image {
  DeviceTensor t;
  int64_t N, H, W, C;
};

// `in` moved by (top, left) into a zero-bordered scratch buffer of (N, height, width, C).
Image shifted(Backend& b, const Image& in, int64_t height, int64_t width, int64_t top, int64_t left) {
  const int64_t size = in.N * height * width * in.C;
  if (size > INT_MAX) throw sdk::Error("the zero-bordered copy of a tensor would exceed 32-bit indexing");
  cl_mem out = b.scratch(1, size_t(size) * sizeof(float));
  cl_kernel k = b.kernel("conv2d_helpers", kHelperSource, "", "shift");
  set_args(k, in.t, out, as_int(in.H), as_int(in.W), as_int(in.C), as_int(height), as_int(width),
           as_int(in.N * height), as_int(top), as_int(left));
  size_t local0 = 1;
  while (local0 < 64 && local0 < size_t(in.C)) local0 *= 2;
  launch(b, k, {size_t(in.C), size_t(width), size_t(in.N * height)}, {local0, 1, 1});
  return {{out, 0}, in.N, height, width, in.C};
}

// The filter (KH,KW,C,O) with its channel axes swapped, taps reversed with `flip`, in scratch slot 0.
cl_mem transposed_filter(Backend& b, const lamina_view& w, bool flip) {
  const int64_t size = sdk::view_size(w);
  cl_mem out = b.scratch(0, size_t(size) * sizeof(float));
  cl_kernel k = b.kernel("conv2d_helpers", kHelperSource, "", "transpose_filter");
  set_args(k, device_tensor(w), out, as_int(w.shape[0]), as_int(w.shape[1]), as_int(w.shape[2]),
           as_int(w.shape[3]), cl_int(flip));
  launch(b, k, {size_t(size)}, {64});
  return out;
}

// What correlate adds to each sum: the bias (when given) and the activation.
struct Epilogue {
  const lamina_view* bias = nullptr;
  sdk::Activation activation = sdk::Activation::linear;
};

// The taps and channel groups of a correlation: KH×KW taps DH, DW apart, groups of CG input
// channels (of the image's C) and OG output channels (of CO).
struct Taps {
  int64_t KH = 1, KW = 1, DH = 1, DW = 1;
  int64_t CG = 0, CO = 0, OG = 0;
};

// out = the valid correlation of `in` with filter f (KH,KW,CG,CO) at strides (SH, SW), then the
// epilogue; rows of `in` outside [row_lo, row_hi) are zero.
void correlate(Backend& b, const Image& in, DeviceTensor f, const Taps& t, int64_t SH, int64_t SW,
               const lamina_view& out, int64_t row_lo, int64_t row_hi, Epilogue epilogue = {}) {
  const int64_t OH = out.shape[1], OW = out.shape[2];
  const int vw = vector_width(t.OG);  // a vector of output channels stays in one group
  const int64_t pb = pixels_per_item(OW, vw);
  const std::string options = defines({{"KH", t.KH},
                                       {"KW", t.KW},
                                       {"DH", t.DH},
                                       {"DW", t.DW},
                                       {"CIN", in.C},
                                       {"CG", t.CG},
                                       {"CO", t.CO},
                                       {"OG", t.OG},
                                       {"SH", SH},
                                       {"SW", SW},
                                       {"VW", vw},
                                       {"PB", pb},
                                       {"BIAS", epilogue.bias != nullptr},
                                       {"ACT", activation_code(epilogue.activation)}});
  cl_kernel k = b.kernel("conv2d", kValidSource.c_str(), options, "correlate");
  const DeviceTensor bias = epilogue.bias ? device_tensor(*epilogue.bias) : f;  // not read without BIAS
  set_args(k, in.t, f, bias, device_tensor(out), as_int(in.H), as_int(in.W), as_int(OH), as_int(OW),
           as_int(row_lo), as_int(row_hi));
  launch(b, k, {size_t((OW + pb - 1) / pb), size_t(in.N * OH), size_t(t.CO / vw)});
}

// y = activation(conv2d(x, w) + b), b optional.
void conv_forward(const sdk::KernelArgs& args, const Conv& s, Epilogue epilogue) {
  Backend& b = backend_of(args);
  Image x{device_tensor(args.inputs[0]), s.n, s.h, s.w, s.c};
  if (s.top || s.bottom || s.left || s.right)
    x = shifted(b, x, s.h + s.top + s.bottom, s.w + s.left + s.right, s.top, s.left);
  correlate(b, x, device_tensor(args.inputs[1]), {s.kh, s.kw, s.dh, s.dw, s.cg, s.o, s.og}, s.sh, s.sw,
            args.outputs[0], s.top, s.top + s.h, epilogue);
}

// dw of a convolution from x and dy.
void filter_gradient(const sdk::KernelArgs& args, const Conv& s) {
  // A tile of up to 8 input channels × 2 vectors of output channels: 16 accumulators, each value of
  // x loaded once per 2 vector multiply-adds.
  // (Both within one group: VW·NV divides O/G and CB divides C/G.)
  const int vw = vector_width(s.og);
  const int64_t nv = (s.og / vw) % 2 == 0 ? 2 : 1;
  int64_t cb = 8;  // the widest of 8, 4, 2, 1 dividing C/G
  while (s.cg % cb != 0) cb /= 2;
  Backend& b = backend_of(args);
  const std::string options = defines({{"KH", s.kh},
                                       {"KW", s.kw},
                                       {"DH", s.dh},
                                       {"DW", s.dw},
                                       {"C", s.c},
                                       {"CG", s.cg},
                                       {"O", s.o},
                                       {"OG", s.og},
                                       {"SH", s.sh},
                                       {"SW", s.sw},
                                       {"VW", vw},
                                       {"NV", nv},
                                       {"CB", cb}});
  cl_kernel k = b.kernel("conv2d_backward_filter", kFilterSource.c_str(), options, "conv2d_backward_filter");
  set_args(k, device_tensor(args.inputs[0]), device_tensor(args.inputs[1]), device_tensor(args.outputs[0]),
           as_int(s.n), as_int(s.h), as_int(s.w), as_int(s.oh), as_int(s.ow), as_int(s.top), as_int(s.left));
  launch(b, k, {size_t(s.kh * s.kw), size_t(s.cg / cb), size_t(s.o / (nv * vw))});
}

}  // namespace

OPENCL_KERNEL(conv2d) {
  // x is (N,H,W,C), w is (KH,KW,C,O), y is (N,OH,OW,O)
  // y[n,oh,ow,o] = Σ over (di,dj,c) of x[n, oh·sh + di − top, ow·sw + dj − left, c] · w[di,dj,c,o]
  expect_arity(args, {"x", "w"}, {"y"});
  conv_forward(args,
               int_window(full_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0], "x",
                                             "w", "y")),
               {});
}

OPENCL_KERNEL(conv2d_bias) {
  // x is (N,H,W,C), w is (KH,KW,C,O), b is (O), y is (N,OH,OW,O); y = activation(conv2d(x, w) + b)
  expect_arity(args, {"x", "w", "b"}, {"y"});
  const Conv s = int_window(
      full_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0], "x", "w", "y"));
  expect_vector(args.inputs[2], "b", s.o, "output channel");
  conv_forward(args, s, {&args.inputs[2], sdk::read_activation(args.attrs)});
}

OPENCL_KERNEL(conv2d_backward_data) {
  // dy is (N,OH,OW,O), w is (KH,KW,C,O), dx is (N,H,W,C)
  expect_arity(args, {"dy", "w"}, {"dx"});
  const Conv s = int_window(
      full_conv_geometry(args.attrs, args.outputs[0], args.inputs[1], args.inputs[0], "dx", "w", "dy"));
  Backend& b = backend_of(args);
  const Image dy{device_tensor(args.inputs[0]), s.n, s.oh, s.ow, s.o};
  if (s.sh == 1 && s.sw == 1 && s.plain()) {
    // dx[ih,iw] = Σ over (di,dj) of dy[ih + top − di, iw + left − dj] · w[di,dj]ᵀ: with dy moved by
    // (KH−1−top, KW−1−left) into a zero border, that is a valid correlation with the taps reversed.
    cl_mem wt = transposed_filter(b, args.inputs[1], true);
    const int64_t top = s.kh - 1 - s.top;
    const Image padded = shifted(b, dy, s.h + s.kh - 1, s.w + s.kw - 1, top, s.kw - 1 - s.left);
    correlate(b, padded, {wt, 0}, {s.kh, s.kw, 1, 1, s.o, s.c, s.c}, 1, 1, args.outputs[0], top, top + s.oh);
    return;
  }
  cl_mem wt = transposed_filter(b, args.inputs[1], false);
  const int vw = vector_width(s.cg);  // a vector of input channels stays in one group
  const int64_t pb = pixels_per_item(s.w, vw);
  const std::string options = defines({{"KH", s.kh},
                                       {"KW", s.kw},
                                       {"DH", s.dh},
                                       {"DW", s.dw},
                                       {"C", s.c},
                                       {"CG", s.cg},
                                       {"O", s.o},
                                       {"OG", s.og},
                                       {"SH", s.sh},
                                       {"SW", s.sw},
                                       {"VW", vw},
                                       {"PB", pb}});
  cl_kernel k = b.kernel("conv2d_backward_data", kGatherSource.c_str(), options, "conv2d_backward_data");
  set_args(k, dy.t, wt, device_tensor(args.outputs[0]), as_int(s.h), as_int(s.w), as_int(s.oh), as_int(s.ow),
           as_int(s.top), as_int(s.left));
  launch(b, k, {size_t((s.w + pb - 1) / pb), size_t(s.n * s.h), size_t(s.c / vw)});
}

// conv2d_transpose: x, w → y is conv2d_backward_data with x in dy's place (docs/ops.md).
OPENCL_KERNEL(conv2d_transpose) {
  conv2d_backward_data_body(args, be);
}

OPENCL_KERNEL(conv2d_backward_filter) {
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C,O)
  expect_arity(args, {"x", "dy"}, {"dw"});
  filter_gradient(args, int_window(full_conv_geometry(args.attrs, args.inputs[0], args.outputs[0],
                                                      args.inputs[1], "x", "dw", "dy")));
}

OPENCL_KERNEL(conv2d_backward_filter_bias) {
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C,O), db is (O); db[o] = Σ over (n,oh,ow) of dy
  expect_arity(args, {"x", "dy"}, {"dw", "db"});
  const Conv s = int_window(
      full_conv_geometry(args.attrs, args.inputs[0], args.outputs[0], args.inputs[1], "x", "dw", "dy"));
  expect_vector(args.outputs[1], "db", s.o, "output channel");
  filter_gradient(args, s);
  sum_rows(backend_of(args), device_tensor(args.inputs[1]), s.n * s.oh * s.ow, s.o,
           device_tensor(args.outputs[1]));
}

}  // namespace lamina::opencl
