// 2-D max and average pooling over NHWC activations, with their gradients.
//
// Window (oh, ow) covers input rows oh*sh - top + [0, ph) and columns ow*sw - left + [0, pw); only the
// cells inside the input take part. A window lying wholly in the padding has no cells: its output is
// 0 and it passes no gradient.
#include "kernels.hpp"

#include <algorithm>
#include <vector>

namespace lamina::reference {
namespace {

using Pool = sdk::PoolGeometry;

}  // namespace

REFERENCE_KERNEL(max_pool2d) {
  // x is (N,H,W,C), y is (N,OH,OW,C); y[n,oh,ow,c] = max of x[n,ih,iw,c] over the window's cells
  expect_arity(args, {"x"}, {"y"});
  const Pool p = pool_geometry(args.attrs, args.inputs[0], args.outputs[0], "x", "y");
  const float* x = input(args, 0);
  float* y = output(args, 0);

  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t oh = 0; oh < p.oh; ++oh) {
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        // y's own pixel holds the running maximum; the first cell seeds it, so padding never wins.
        float* y_pixel = y + ((n * p.oh + oh) * p.ow + ow) * p.c;
        bool seeded = false;
        for (int64_t ih = p.row_begin(oh); ih < p.row_end(oh); ++ih) {
          for (int64_t iw = p.col_begin(ow); iw < p.col_end(ow); ++iw) {
            const float* x_pixel = x + ((n * p.h + ih) * p.w + iw) * p.c;
            if (!seeded) {
              std::copy(x_pixel, x_pixel + p.c, y_pixel);
              seeded = true;
            } else {
              for (int64_t c = 0; c < p.c; ++c)
                y_pixel[c] = x_pixel[c] > y_pixel[c] ? x_pixel[c] : y_pixel[c];
            }
          }
        }
        if (!seeded) std::fill(y_pixel, y_pixel + p.c, 0.0f);
      }
    }
  }
}

REFERENCE_KERNEL(max_pool2d_backward) {
  // x is (N,H,W,C), dy is (N,OH,OW,C), dx is x's shape
  // each dy[n,oh,ow,c] goes to the first cell of its window (row-major) holding the window's maximum
  expect_arity(args, {"x", "dy"}, {"dx"});
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "dx");
  const Pool p = pool_geometry(args.attrs, args.inputs[0], args.inputs[1], "x", "dy");
  const float* x = input(args, 0);
  const float* dy = input(args, 1);
  float* dx = output(args, 0);

  std::vector<double> acc(size_t(sdk::view_size(args.outputs[0])), 0.0);  // dx; windows may overlap
  std::vector<float> best(size_t(p.c));
  std::vector<int64_t> best_at(size_t(p.c));  // flat index into x of each channel's winner
  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t oh = 0; oh < p.oh; ++oh) {
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        bool seeded = false;
        for (int64_t ih = p.row_begin(oh); ih < p.row_end(oh); ++ih) {
          for (int64_t iw = p.col_begin(ow); iw < p.col_end(ow); ++iw) {
            const int64_t at = ((n * p.h + ih) * p.w + iw) * p.c;
            for (int64_t c = 0; c < p.c; ++c) {
              // Strictly greater, so that ties keep the earlier cell.
              if (!seeded || x[at + c] > best[size_t(c)]) {
                best[size_t(c)] = x[at + c];
                best_at[size_t(c)] = at + c;
              }
            }
            seeded = true;
          }
        }
        if (!seeded) continue;
        const float* dy_pixel = dy + ((n * p.oh + oh) * p.ow + ow) * p.c;
        for (int64_t c = 0; c < p.c; ++c) acc[size_t(best_at[size_t(c)])] += dy_pixel[c];
      }
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = float(acc[i]);
}

REFERENCE_KERNEL(avg_pool2d) {
  // x is (N,H,W,C), y is (N,OH,OW,C); y[n,oh,ow,c] = mean of x[n,ih,iw,c] over the window's cells,
  // so padding is excluded from the count
  expect_arity(args, {"x"}, {"y"});
  const Pool p = pool_geometry(args.attrs, args.inputs[0], args.outputs[0], "x", "y");
  const float* x = input(args, 0);
  float* y = output(args, 0);

  std::vector<double> sum(size_t(p.c));
  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t oh = 0; oh < p.oh; ++oh) {
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        std::fill(sum.begin(), sum.end(), 0.0);
        int64_t count = 0;
        for (int64_t ih = p.row_begin(oh); ih < p.row_end(oh); ++ih) {
          for (int64_t iw = p.col_begin(ow); iw < p.col_end(ow); ++iw) {
            const float* x_pixel = x + ((n * p.h + ih) * p.w + iw) * p.c;
            for (int64_t c = 0; c < p.c; ++c) sum[size_t(c)] += x_pixel[c];
            ++count;
          }
        }
        float* y_pixel = y + ((n * p.oh + oh) * p.ow + ow) * p.c;
        for (int64_t c = 0; c < p.c; ++c) y_pixel[c] = count ? float(sum[size_t(c)] / double(count)) : 0.0f;
      }
    }
  }
}

REFERENCE_KERNEL(avg_pool2d_backward) {
  // dy is (N,OH,OW,C), dx is (N,H,W,C); each dy[n,oh,ow,c] / count goes to every cell of its window
  expect_arity(args, {"dy"}, {"dx"});
  const Pool p = pool_geometry(args.attrs, args.outputs[0], args.inputs[0], "dx", "dy");
  const float* dy = input(args, 0);
  float* dx = output(args, 0);

  std::vector<double> acc(size_t(sdk::view_size(args.outputs[0])), 0.0);  // dx; windows may overlap
  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t oh = 0; oh < p.oh; ++oh) {
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        const int64_t rows = std::max<int64_t>(p.row_end(oh) - p.row_begin(oh), 0);
        const int64_t cols = std::max<int64_t>(p.col_end(ow) - p.col_begin(ow), 0);
        const int64_t count = rows * cols;
        if (count == 0) continue;
        const float* dy_pixel = dy + ((n * p.oh + oh) * p.ow + ow) * p.c;
        for (int64_t ih = p.row_begin(oh); ih < p.row_end(oh); ++ih) {
          for (int64_t iw = p.col_begin(ow); iw < p.col_end(ow); ++iw) {
            double* acc_pixel = acc.data() + ((n * p.h + ih) * p.w + iw) * p.c;
            for (int64_t c = 0; c < p.c; ++c) acc_pixel[c] += double(dy_pixel[c]) / double(count);
          }
        }
      }
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = float(acc[i]);
}

}  // namespace lamina::reference
