// The shapes of the windowed ops (conv2d, the pools, their gradients) and of matmul, read from a
// kernel's views and attributes and checked against each other, with messages that name the
// tensors, the shapes and the attributes. Layouts are docs/ops.md's: activations NHWC, conv kernels
// HWIO; attributes `strides` [sh, sw] (default 1), `pads` [top, bottom, left, right] (default 0),
// for convolutions `dilation` [dh, dw] and `groups` (default 1),
// `pool` [ph, pw] (required by the pools), `transpose_a` and `transpose_b` (default 0).
#pragma once

#include <lamina/sdk/backend.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

namespace lamina::sdk {

// The extent of one output axis of a window of k moved by s over an input of `in` padded by
// pad_lo + pad_hi: (in + pads − k) / s + 1, or 0 when the window does not fit.
inline int64_t window_extent(int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t k, int64_t s) {
  const int64_t padded = in + pad_lo + pad_hi;
  return padded >= k && s >= 1 ? (padded - k) / s + 1 : 0;
}

// A kh×kw window moved by (sh, sw) over an input padded by (top, bottom, left, right). Output cell
// (i, j) covers input rows i·sh − top + [0, kh) and columns j·sw − left + [0, kw).
struct Window {
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t top = 0, bottom = 0, left = 0, right = 0;

  bool symmetric() const { return top == bottom && left == right; }
  bool unpadded() const { return top == 0 && bottom == 0 && left == 0 && right == 0; }
};

// "3x4"
inline std::string extent_string(int64_t a, int64_t b) {
  return std::to_string(a) + "x" + std::to_string(b);
}
// "[top, bottom, left, right]"
inline std::string pads_string(const Window& g) {
  std::string s = "[";
  for (int64_t p : {g.top, g.bottom, g.left, g.right}) {
    if (s.size() > 1) s += ", ";
    s += std::to_string(p);
  }
  return s + "]";
}

// Reads `strides` and `pads` (defaults: 1 and 0) for a window of kh×kw, and checks all three.
inline Window read_window(const AttrReader& attrs, int64_t kh, int64_t kw) {
  const auto strides = attrs.get_ints<2>("strides", {1, 1});
  const auto pads = attrs.get_ints<4>("pads", {0, 0, 0, 0});
  if (strides[0] < 1 || strides[1] < 1)
    throw Error("strides must be >= 1, got [" + std::to_string(strides[0]) + ", " +
                std::to_string(strides[1]) + "]");
  for (int64_t p : pads)
    if (p < 0) throw Error("pads must be >= 0, got a pad of " + std::to_string(p));
  if (kh < 1 || kw < 1) throw Error("window must be at least 1x1, got " + extent_string(kh, kw));
  return {kh, kw, strides[0], strides[1], pads[0], pads[1], pads[2], pads[3]};
}

// The output size is fixed by the input size and the window; a mismatch means the caller computed
// shapes with a different convention, and the kernel would silently compute something else, so it
// is refused.
inline void expect_window_fits(const Window& g, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const int64_t want_h = window_extent(h, g.top, g.bottom, g.kh, g.sh);
  const int64_t want_w = window_extent(w, g.left, g.right, g.kw, g.sw);
  if (want_h == 0 || want_w == 0)
    throw Error("the " + extent_string(g.kh, g.kw) + " window does not fit the input " + extent_string(h, w) +
                " padded by " + pads_string(g));
  if (oh != want_h || ow != want_w)
    throw Error("the output is " + extent_string(oh, ow) + " but an input of " + extent_string(h, w) +
                " padded by " + pads_string(g) + " with a " + extent_string(g.kh, g.kw) +
                " window and strides [" + std::to_string(g.sh) + ", " + std::to_string(g.sw) + "] gives " +
                extent_string(want_h, want_w));
}

// ------------------------------------------------------------------------------------------------
// Convolution: x (N,H,W,C), w (KH,KW,C/G,O), y (N,OH,OW,O), with `dilation` [dh, dw] (default 1)
// and `groups` G (default 1). Tap (di, dj) reads input cell (i·sh + di·dh − top, j·sw + dj·dw −
// left); output channel o reads the input channels of its group, g = o / (O/G):
// y[n,i,j,o] = Σ over (di, dj, k < C/G) of x[n, i·sh + di·dh − top, j·sw + dj·dw − left, g·(C/G) + k]
//                                         · w[di, dj, k, o].

struct ConvGeometry : Window {
  int64_t n = 0, h = 0, w = 0, c = 0;  // x
  int64_t o = 0;                       // w's output channels
  int64_t oh = 0, ow = 0;              // y
  int64_t dh = 1, dw = 1;              // dilation: the distance between neighbouring taps
  int64_t groups = 1;                  // G: w holds C/G input channels per output channel
  int64_t cg = 0, og = 0;              // C/G and O/G, the channels of one group

  // Whether this is the plain convolution every backend had before dilation and groups.
  bool plain() const { return dh == 1 && dw == 1 && groups == 1; }
  // The input cells a dilated kernel spans: (k − 1)·d + 1.
  int64_t span_h() const { return (kh - 1) * dh + 1; }
  int64_t span_w() const { return (kw - 1) * dw + 1; }
};

// The whole contract, for kernels that do dilation and groups. `x`, `w` and `y` are the views shaped
// like the forward op's x, w and y, whichever of them is the kernel's output; the names are those
// the kernel's caller knows them by (dx, dy, dw ...).
inline ConvGeometry full_conv_geometry(const AttrReader& attrs, const lamina_view& x, const lamina_view& w,
                                       const lamina_view& y, const char* x_name = "x",
                                       const char* w_name = "w", const char* y_name = "y") {
  expect_rank(x, x_name, 4, "(N,H,W,C)");
  expect_rank(w, w_name, 4, "(KH,KW,C/groups,O)");
  expect_rank(y, y_name, 4, "(N,OH,OW,O)");
  const int64_t groups = attrs.get_int("groups", 1);
  const auto dilation = attrs.get_ints<2>("dilation", {1, 1});
  if (groups < 1) throw Error("groups must be >= 1, got " + std::to_string(groups));
  if (dilation[0] < 1 || dilation[1] < 1)
    throw Error("dilation must be >= 1, got [" + std::to_string(dilation[0]) + ", " +
                std::to_string(dilation[1]) + "]");
  if (x.shape[3] % groups != 0 || w.shape[3] % groups != 0 || w.shape[2] * groups != x.shape[3] ||
      y.shape[0] != x.shape[0] || y.shape[3] != w.shape[3])
    throw Error(std::string("shapes disagree: ") + x_name + " " + shape_string(x) + ", " + w_name + " " +
                shape_string(w) + " and " + y_name + " " + shape_string(y) + " with groups " +
                std::to_string(groups) + "; expected x (N,H,W,C), w (KH,KW,C/groups,O), y (N,OH,OW,O)");
  ConvGeometry g;
  static_cast<Window&>(g) = read_window(attrs, w.shape[0], w.shape[1]);
  g.n = x.shape[0], g.h = x.shape[1], g.w = x.shape[2], g.c = x.shape[3];
  g.o = w.shape[3];
  g.oh = y.shape[1], g.ow = y.shape[2];
  g.dh = dilation[0], g.dw = dilation[1];
  g.groups = groups;
  g.cg = g.c / groups, g.og = g.o / groups;
  // The window's extent is the dilated kernel's span.
  Window span = g;
  span.kh = g.span_h(), span.kw = g.span_w();
  expect_window_fits(span, g.h, g.w, g.oh, g.ow);
  return g;
}

// For kernels that do the plain convolution only (as every backend's did before dilation and
// groups): full_conv_geometry, refusing dilation and groups with a message that says so, so that
// such a kernel never computes something else.
inline ConvGeometry conv_geometry(const AttrReader& attrs, const lamina_view& x, const lamina_view& w,
                                  const lamina_view& y, const char* x_name = "x", const char* w_name = "w",
                                  const char* y_name = "y") {
  ConvGeometry g = full_conv_geometry(attrs, x, w, y, x_name, w_name, y_name);
  if (!g.plain())
    throw Error("this backend's convolution kernels take no dilation or groups (got dilation [" +
                std::to_string(g.dh) + ", " + std::to_string(g.dw) + "] and groups " +
                std::to_string(g.groups) +
                "); run the model on a backend that does, such as reference or onednn");
  return g;
}

// ------------------------------------------------------------------------------------------------
// Pooling: x (N,H,W,C) → y (N,OH,OW,C). Only the cells of a window inside the input take part; a
// window lying wholly in the padding has none.

struct PoolGeometry : Window {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t oh = 0, ow = 0;

  // The cells of window (oh, ow) inside the input: rows [row_begin, row_end), columns
  // [col_begin, col_end); an empty range when the window lies in the padding.
  int64_t row_begin(int64_t i) const { return std::max<int64_t>(i * sh - top, 0); }
  int64_t row_end(int64_t i) const { return std::min<int64_t>(i * sh - top + kh, h); }
  int64_t col_begin(int64_t j) const { return std::max<int64_t>(j * sw - left, 0); }
  int64_t col_end(int64_t j) const { return std::min<int64_t>(j * sw - left + kw, w); }
  // Whether some window lies wholly in the padding (only possible when a pad reaches the window
  // size). Windows step monotonically, so only the first and last along each axis can be empty.
  bool has_empty_window() const {
    return top >= kh || left >= kw || (oh - 1) * sh - top >= h || (ow - 1) * sw - left >= w;
  }
};

// `x` and `y` are the views shaped like the forward op's input and output.
inline PoolGeometry pool_geometry(const AttrReader& attrs, const lamina_view& x, const lamina_view& y,
                                  const char* x_name = "x", const char* y_name = "y") {
  expect_rank(x, x_name, 4, "(N,H,W,C)");
  expect_rank(y, y_name, 4, "(N,OH,OW,C)");
  if (y.shape[0] != x.shape[0] || y.shape[3] != x.shape[3])
    throw Error(std::string(x_name) + " " + shape_string(x) + " and " + y_name + " " + shape_string(y) +
                " must agree on batch and channels: expected (N,H,W,C) and (N,OH,OW,C)");
  attrs.need("pool");
  const auto pool = attrs.get_ints<2>("pool", {1, 1});
  PoolGeometry g;
  static_cast<Window&>(g) = read_window(attrs, pool[0], pool[1]);
  g.n = x.shape[0], g.h = x.shape[1], g.w = x.shape[2], g.c = x.shape[3];
  g.oh = y.shape[1], g.ow = y.shape[2];
  expect_window_fits(g, g.h, g.w, g.oh, g.ow);
  return g;
}

// ------------------------------------------------------------------------------------------------
// Matrix product: y (M,N) = op(a)·op(b), a (M,K) or with transpose_a (K,M), b (K,N) or with
// transpose_b (N,K).

struct MatmulGeometry {
  int64_t m = 0, k = 0, n = 0;
  bool transpose_a = false, transpose_b = false;
};

inline MatmulGeometry matmul_geometry(const lamina_view& a, const lamina_view& b, const lamina_view& y,
                                      bool transpose_a, bool transpose_b) {
  expect_rank(a, "a", 2, transpose_a ? "(K,M)" : "(M,K)");
  expect_rank(b, "b", 2, transpose_b ? "(N,K)" : "(K,N)");
  expect_rank(y, "y", 2, "(M,N)");
  MatmulGeometry g;
  g.transpose_a = transpose_a, g.transpose_b = transpose_b;
  g.m = transpose_a ? a.shape[1] : a.shape[0];
  g.k = transpose_a ? a.shape[0] : a.shape[1];
  g.n = transpose_b ? b.shape[0] : b.shape[1];
  const int64_t k_b = transpose_b ? b.shape[1] : b.shape[0];
  if (g.k != k_b || y.shape[0] != g.m || y.shape[1] != g.n)
    throw Error("a " + shape_string(a) + (transpose_a ? " (transposed)" : "") + " times b " +
                shape_string(b) + (transpose_b ? " (transposed)" : "") + " does not give y " +
                shape_string(y));
  return g;
}
inline MatmulGeometry matmul_geometry(const AttrReader& attrs, const lamina_view& a, const lamina_view& b,
                                      const lamina_view& y) {
  return matmul_geometry(a, b, y, attrs.get_int("transpose_a", 0) != 0, attrs.get_int("transpose_b", 0) != 0);
}

}  // namespace lamina::sdk
