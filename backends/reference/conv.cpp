// 2-D convolution (cross-correlation), NHWC activations and HWIO kernels, with its two gradients,
// dilation and groups (docs/ops.md).
//
// All three kernels visit the same (n, oh, ow, di, dj) index space, skipping taps that fall in the
// padding; they differ only in which tensor is accumulated.
#include "kernels.hpp"

#include <algorithm>
#include <vector>

namespace lamina::reference {
namespace {

using Conv = sdk::ConvGeometry;

// y = activation(conv(x, w) + b), with b optional (null).
void conv_forward(const Conv& s, const float* x, const float* w, const float* b, sdk::Activation act, float* y) {
  // y[n,oh,ow,o] = sum over di,dj,k of x[n, oh*sh+di*dh-top, ow*sw+dj*dw-left, g*cg+k] * w[di,dj,k,o]
  // with g = o / og, the group of output channel o
  std::vector<double> acc(size_t(s.o));  // y[n,oh,ow,:]
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t oh = 0; oh < s.oh; ++oh) {
      for (int64_t ow = 0; ow < s.ow; ++ow) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t di = 0; di < s.kh; ++di) {
          const int64_t ih = oh * s.sh + di * s.dh - s.top;
          if (ih < 0 || ih >= s.h) continue;
          for (int64_t dj = 0; dj < s.kw; ++dj) {
            const int64_t iw = ow * s.sw + dj * s.dw - s.left;
            if (iw < 0 || iw >= s.w) continue;
            const float* x_pixel = x + ((n * s.h + ih) * s.w + iw) * s.c;
            for (int64_t g = 0; g < s.groups; ++g) {
              for (int64_t k = 0; k < s.cg; ++k) {
                const double x_value = x_pixel[g * s.cg + k];
                const float* w_row = w + ((di * s.kw + dj) * s.cg + k) * s.o;
                for (int64_t o = g * s.og; o < (g + 1) * s.og; ++o)
                  acc[size_t(o)] += x_value * double(w_row[o]);
              }
            }
          }
        }
        float* y_pixel = y + ((n * s.oh + oh) * s.ow + ow) * s.o;
        for (int64_t o = 0; o < s.o; ++o)
          y_pixel[o] = float(activate(act, acc[size_t(o)] + (b ? double(b[o]) : 0.0)));
      }
    }
  }
}

}  // namespace

REFERENCE_KERNEL(conv2d) {
  // x is (N,H,W,C), w is (KH,KW,C/G,O), y is (N,OH,OW,O)
  expect_arity(args, {"x", "w"}, {"y"});
  const Conv s =
      full_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0], "x", "w", "y");
  conv_forward(s, input(args, 0), input(args, 1), nullptr, sdk::Activation::linear, output(args, 0));
}

REFERENCE_KERNEL(conv2d_bias) {
  // x is (N,H,W,C), w is (KH,KW,C/G,O), b is (O), y is (N,OH,OW,O); y = activation(conv2d(x, w) + b)
  expect_arity(args, {"x", "w", "b"}, {"y"});
  const Conv s =
      full_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0], "x", "w", "y");
  expect_vector(args.inputs[2], "b", s.o, "output channel");
  conv_forward(s, input(args, 0), input(args, 1), input(args, 2), sdk::read_activation(args.attrs), output(args, 0));
}

REFERENCE_KERNEL(conv2d_backward_data) {
  // dy is (N,OH,OW,O), w is (KH,KW,C/G,O), dx is (N,H,W,C)
  // dx[n,ih,iw,g*cg+k] = sum over the (oh,ow,di,dj) with oh*sh+di*dh-top = ih and
  //                      ow*sw+dj*dw-left = iw, and over the o of group g, of dy[n,oh,ow,o] * w[di,dj,k,o]
  expect_arity(args, {"dy", "w"}, {"dx"});
  const Conv s =
      full_conv_geometry(args.attrs, args.outputs[0], args.inputs[1], args.inputs[0], "dx", "w", "dy");
  const float* dy = input(args, 0);
  const float* w = input(args, 1);
  float* dx = output(args, 0);

  // Each dx pixel gathers from the dy pixels whose windows cover it: oh = (ih + top - di*dh) / sh
  // when that division is exact and in range. Partial sums are kept per (input channel, o) and
  // summed over o once per pixel, so that the innermost loop runs over the contiguous output
  // channels of both dy and w, whatever the number of input channels.
  std::vector<double> partial(size_t(s.c * s.og));  // dx[n,ih,iw,c] before the sum over its group's o
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t ih = 0; ih < s.h; ++ih) {
      for (int64_t iw = 0; iw < s.w; ++iw) {
        std::fill(partial.begin(), partial.end(), 0.0);
        for (int64_t di = 0; di < s.kh; ++di) {
          const int64_t th = ih + s.top - di * s.dh;
          if (th < 0 || th % s.sh != 0 || th / s.sh >= s.oh) continue;
          const int64_t oh = th / s.sh;
          for (int64_t dj = 0; dj < s.kw; ++dj) {
            const int64_t tw = iw + s.left - dj * s.dw;
            if (tw < 0 || tw % s.sw != 0 || tw / s.sw >= s.ow) continue;
            const int64_t ow = tw / s.sw;
            const float* dy_pixel = dy + ((n * s.oh + oh) * s.ow + ow) * s.o;
            for (int64_t c = 0; c < s.c; ++c) {
              const int64_t g = c / s.cg, k = c % s.cg;
              const float* w_row = w + ((di * s.kw + dj) * s.cg + k) * s.o + g * s.og;
              const float* dy_group = dy_pixel + g * s.og;
              double* partial_row = partial.data() + c * s.og;
              for (int64_t o = 0; o < s.og; ++o) partial_row[o] += double(dy_group[o]) * double(w_row[o]);
            }
          }
        }
        float* dx_pixel = dx + ((n * s.h + ih) * s.w + iw) * s.c;
        for (int64_t c = 0; c < s.c; ++c) {
          double sum = 0.0;
          for (int64_t o = 0; o < s.og; ++o) sum += partial[size_t(c * s.og + o)];
          dx_pixel[c] = float(sum);
        }
      }
    }
  }
}

// conv2d_transpose: x, w → y is conv2d_backward_data with x in dy's place (docs/ops.md).
REFERENCE_KERNEL(conv2d_transpose) {
  conv2d_backward_data_body(args, be);
}

namespace {

// dw (and db, when given) of a convolution from x and dy.
void conv_filter_gradient(const Conv& s, const float* x, const float* dy, float* dw, float* db) {
  // dw[di,dj,k,o] = sum over n,oh,ow of x[n, oh*sh+di*dh-top, ow*sw+dj*dw-left, g*cg+k] * dy[n,oh,ow,o]
  //                 with g = o / og
  // db[o] = sum over n,oh,ow of dy[n,oh,ow,o]
  std::vector<double> acc(size_t(s.kh * s.kw * s.cg * s.o), 0.0);  // dw
  std::vector<double> bias(size_t(s.o), 0.0);                      // db
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t oh = 0; oh < s.oh; ++oh) {
      for (int64_t ow = 0; ow < s.ow; ++ow) {
        const float* dy_pixel = dy + ((n * s.oh + oh) * s.ow + ow) * s.o;
        for (int64_t o = 0; o < s.o; ++o) bias[size_t(o)] += double(dy_pixel[o]);
        for (int64_t di = 0; di < s.kh; ++di) {
          const int64_t ih = oh * s.sh + di * s.dh - s.top;
          if (ih < 0 || ih >= s.h) continue;
          for (int64_t dj = 0; dj < s.kw; ++dj) {
            const int64_t iw = ow * s.sw + dj * s.dw - s.left;
            if (iw < 0 || iw >= s.w) continue;
            const float* x_pixel = x + ((n * s.h + ih) * s.w + iw) * s.c;
            for (int64_t g = 0; g < s.groups; ++g) {
              for (int64_t k = 0; k < s.cg; ++k) {
                const double x_value = x_pixel[g * s.cg + k];
                double* acc_row = acc.data() + ((di * s.kw + dj) * s.cg + k) * s.o;
                for (int64_t o = g * s.og; o < (g + 1) * s.og; ++o)
                  acc_row[o] += x_value * double(dy_pixel[o]);
              }
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
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C/G,O)
  expect_arity(args, {"x", "dy"}, {"dw"});
  const Conv s =
      full_conv_geometry(args.attrs, args.inputs[0], args.outputs[0], args.inputs[1], "x", "dw", "dy");
  conv_filter_gradient(s, input(args, 0), input(args, 1), output(args, 0), nullptr);
}

REFERENCE_KERNEL(conv2d_backward_filter_bias) {
  // x is (N,H,W,C), dy is (N,OH,OW,O), dw is (KH,KW,C/G,O), db is (O)
  expect_arity(args, {"x", "dy"}, {"dw", "db"});
  const Conv s =
      full_conv_geometry(args.attrs, args.inputs[0], args.outputs[0], args.inputs[1], "x", "dw", "dy");
  expect_vector(args.outputs[1], "db", s.o, "output channel");
  conv_filter_gradient(s, input(args, 0), input(args, 1), output(args, 0), output(args, 1));
}

}  // namespace lamina::reference
