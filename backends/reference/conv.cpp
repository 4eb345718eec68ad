// 2-D convolution (cross-correlation), NHWC activations and HWIO kernels, with its two gradients.
//
// All three kernels visit the same (n, oh, ow, di, dj) index space, skipping taps that fall in the
// padding; they differ only in which tensor is accumulated.
#include "kernels.hpp"

#include <algorithm>
#include <vector>

namespace lamina::reference {
namespace {

// Sizes of one convolution, checked against each other and against the attributes.
struct Conv {
  int64_t N, H, W, C;  // x is (N,H,W,C)
  int64_t KH, KW, O;   // w is (KH,KW,C,O)
  int64_t OH, OW;      // y is (N,OH,OW,O)
  Window g;
};

// `x`, `w` and `y` are the views shaped like the forward op's x, w and y, whichever of them is the
// output of the kernel at hand; the names are those the kernel's caller knows them by.
Conv conv_sizes(const sdk::KernelArgs& args, const lamina_view& x, const char* x_name, const lamina_view& w,
                const char* w_name, const lamina_view& y, const char* y_name) {
  expect_rank(x, x_name, 4, "(N,H,W,C)");
  expect_rank(w, w_name, 4, "(KH,KW,C,O)");
  expect_rank(y, y_name, 4, "(N,OH,OW,O)");
  Conv c{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0],
         w.shape[1], w.shape[3], y.shape[1], y.shape[2], {}};
  if (w.shape[2] != c.C || y.shape[0] != c.N || y.shape[3] != c.O)
    throw sdk::Error(std::string(x_name) + " " + shape_string(x) + ", " + w_name + " " + shape_string(w) +
                     " and " + y_name + " " + shape_string(y) +
                     " disagree: expected x (N,H,W,C), w (KH,KW,C,O), y (N,OH,OW,O)");
  c.g = read_window(args.attrs, c.KH, c.KW);
  expect_window_fits(c.g, c.H, c.W, c.OH, c.OW);
  return c;
}

// y = activation(conv(x, w) + b), with b optional (null).
void conv_forward(const Conv& s, const float* x, const float* w, const float* b, sdk::Activation act, float* y) {
  // y[n,oh,ow,o] = sum over di,dj,c of x[n, oh*sh+di-top, ow*sw+dj-left, c] * w[di,dj,c,o]
  std::vector<double> acc(size_t(s.O));  // y[n,oh,ow,:]
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t di = 0; di < s.KH; ++di) {
          const int64_t ih = oh * s.g.sh + di - s.g.top;
          if (ih < 0 || ih >= s.H) continue;
          for (int64_t dj = 0; dj < s.KW; ++dj) {
            const int64_t iw = ow * s.g.sw + dj - s.g.left;
            if (iw < 0 || iw >= s.W) continue;
            const float* x_pixel = x + ((n * s.H + ih) * s.W + iw) * s.C;
            for (int64_t c = 0; c < s.C; ++c) {
              const double x_value = x_pixel[c];
              const float* w_row = w + ((di * s.KW + dj) * s.C + c) * s.O;
              for (int64_t o = 0; o < s.O; ++o) acc[size_t(o)] += x_value * double(w_row[o]);
            }
          }
        }
        float* y_pixel = y + ((n * s.OH + oh) * s.OW + ow) * s.O;
        for (int64_t o = 0; o < s.O; ++o)
          y_pixel[o] = float(activate(act, acc[size_t(o)] + (b ? double(b[o]) : 0.0)));
      }
    }
  }
}

}  // namespace

REFERENCE_KERNEL(conv2d) {
  // x is (N,H,W,C), w is (KH,KW,C,O), y is (N,OH,OW,O)
  expect_arity(args, {"x", "w"}, {"y"});
  const Conv s = conv_sizes(args, args.inputs[0], "x", args.inputs[1], "w", args.outputs[0], "y");
  conv_forward(s, input(args, 0), input(args, 1), nullptr, sdk::Activation::linear, output(args, 0));
}

REFERENCE_KERNEL(conv2d_bias) {
  // x is (N,H,W,C), w is (KH,KW,C,O), b is (O), y is (N,OH,OW,O); y = activation(conv2d(x, w) + b)
  expect_arity(args, {"x", "w", "b"}, {"y"});
  const Conv s = conv_sizes(args, args.inputs[0], "x", args.inputs[1], "w", args.outputs[0], "y");
  expect_rank(args.inputs[2], "b", 1, "(O)");
  if (args.inputs[2].shape[0] != s.O)
    throw sdk::Error("b " + shape_string(args.inputs[2]) + " must hold one value per output channel (" +
                     std::to_string(s.O) + ")");
  conv_forward(s, input(args, 0), input(args, 1), input(args, 2), sdk::read_activation(args.attrs), output(args, 0));
}

REFERENCE_KERNEL(conv2d_backward_data) {
  // dy is (N,OH,OW,O), w is (KH,KW,C,O), dx is (N,H,W,C)
  // dx[n,ih,iw,c] = sum over the (oh,ow,di,dj) with oh*sh+di-top = ih and ow*sw+dj-left = iw,
  //                 and over o, of dy[n,oh,ow,o] * w[di,dj,c,o]
  expect_arity(args, {"dy", "w"}, {"dx"});
  const Conv s = conv_sizes(args, args.outputs[0], "dx", args.inputs[1], "w", args.inputs[0], "dy");
  const float* dy = input(args, 0);
  const float* w = input(args, 1);
  float* dx = output(args, 0);

  // Each dx pixel gathers from the dy pixels whose windows cover it: oh = (ih + top - di) / sh
  // when that division is exact and in range. Partial sums are kept per (c, o) and summed over o
  // once per pixel, so that the innermost loop runs over the contiguous output channels of both dy
  // and w, whatever the number of input channels.
  std::vector<double> partial(size_t(s.C * s.O));  // dx[n,ih,iw,c] before the sum over o
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t ih = 0; ih < s.H; ++ih) {
      for (int64_t iw = 0; iw < s.W; ++iw) {
        std::fill(partial.begin(), partial.end(), 0.0);
        for (int64_t di = 0; di < s.KH; ++di) {
          const int64_t th = ih + s.g.top - di;
          if (th < 0 || th % s.g.sh != 0 || th / s.g.sh >= s.OH) continue;
          const int64_t oh = th / s.g.sh;
          for (int64_t dj = 0; dj < s.KW; ++dj) {
            const int64_t tw = iw + s.g.left - dj;
            if (tw < 0 || tw % s.g.sw != 0 || tw / s.g.sw >= s.OW) continue;
            const int64_t ow = tw / s.g.sw;
            const float* dy_pixel = dy + ((n * s.OH + oh) * s.OW + ow) * s.O;
            for (int64_t c = 0; c < s.C; ++c) {
              const float* w_row = w + ((di * s.KW + dj) * s.C + c) * s.O;
              double* partial_row = partial.data() + c * s.O;
              for (int64_t o = 0; o < s.O; ++o) partial_row[o] += double(dy_pixel[o]) * double(w_row[o]);
            }
          }
        }
        float* dx_pixel = dx + ((n * s.H + ih) * s.W + iw) * s.C;
        for (int64_t c = 0; c < s.C; ++c) {
          double sum = 0.0;
          for (int64_t o = 0; o < s.O; ++o) sum += partial[size_t(c * s.O + o)];
          dx_pixel[c] = float(sum);
        }
      }
    }
  }
}

namespace {

// dw (and db, when given) of a convolution from x and dy.
void conv_filter_gradient(const Conv& s, const float* x, const float* dy, float* dw, float* db) {
  // dw[di,dj,c,o] = sum over n,oh,ow of x[n, oh*sh+di-top, ow*sw+dj-left, c] * dy[n,oh,ow,o]
  // db[o] = sum over n,oh,ow of dy[n,oh,ow,o]
  std::vector<double> acc(size_t(s.KH * s.KW * s.C * s.O), 0.0);  // dw
  std::vector<double> bias(size_t(s.O), 0.0);                       // db
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const float* dy_pixel = dy + ((n * s.OH + oh) * s.OW + ow) * s.O;
        for (int64_t o = 0; o < s.O; ++o) bias[size_t(o)] += double(dy_pixel[o]);
        for (int64_t di = 0; di < s.KH; ++di) {
          const int64_t ih = oh * s.g.sh + di - s.g.top;
          if (ih < 0 || ih >= s.H) continue;
          for (int64_t dj = 0; dj < s.KW; ++dj) {
            const int64_t iw = ow * s.g.sw + dj - s.g.left;
            if (iw < 0 || iw >= s.W) continue;
            const float* x_pixel = x + ((n * s.H + ih) * s.W + iw) * s.C;
            for (int64_t c = 0; c < s.C; ++c) {
              const double x_value = x_pixel[c];
              double* acc_row = acc.data() + ((di * s.KW + dj) * s.C + c) * s.O;
              for (int64_t o = 0; o < s.O; ++o) acc_row[o] += x_value * double(dy_pixel[o]);
            }
          }
        }
      }
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) dw[i] = float(acc[i]);
  if (db)
    for (size_t o = 0; o < bias.size(); ++o) db[o] = float(bias[o]);
}

}  // namespace

REFERENCE_KERNEL(conv2d_backward_filter) {
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C,O)
  expect_arity(args, {"x", "dy"}, {"dw"});
  const Conv s = conv_sizes(args, args.inputs[0], "x", args.outputs[0], "dw", args.inputs[1], "dy");
  conv_filter_gradient(s, input(args, 0), input(args, 1), output(args, 0), nullptr);
}

REFERENCE_KERNEL(conv2d_backward_filter_bias) {
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C,O), db is (O)
  expect_arity(args, {"x", "dy"}, {"dw", "db"});
  const Conv s = conv_sizes(args, args.inputs[0], "x", args.outputs[0], "dw", args.inputs[1], "dy");
  expect_rank(args.outputs[1], "db", 1, "(O)");
  if (args.outputs[1].shape[0] != s.O)
    throw sdk::Error("db " + shape_string(args.outputs[1]) + " must hold one value per output channel (" +
                     std::to_string(s.O) + ")");
  conv_filter_gradient(s, input(args, 0), input(args, 1), output(args, 0), output(args, 1));
}

}  // namespace lamina::reference
