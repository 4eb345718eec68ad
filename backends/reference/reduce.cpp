// Reductions: reduce_sum, softmax / log_softmax over the last axis, and the fused losses.
#include "kernels.hpp"

#include <algorithm>
#include <cmath>
#include <vector>
#include <utility>

namespace lamina::reference {
namespace {

// softmax and log_softmax share the max-subtracted sum of exponentials of each row.
template <bool Log>
void softmax_rows(const sdk::KernelArgs& args) {
  // x is (..., L), y is x's shape; each row of L elements is normalised on its own
  expect_arity(args, {"x"}, {"y"});
  const auto [rows, length] = last_axis_rows(args.inputs[0], args.outputs[0]);
  if (length == 0) return;
  const float* x = input(args, 0);
  float* y = output(args, 0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x + r * length;
    float* y_row = y + r * length;
    double max = x_row[0];
    for (int64_t j = 1; j < length; ++j) max = std::max(max, double(x_row[j]));
    double sum = 0.0;
    for (int64_t j = 0; j < length; ++j) sum += std::exp(double(x_row[j]) - max);
    if constexpr (Log) {
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < length; ++j) y_row[j] = float(double(x_row[j]) - max - log_sum);
    } else {
      for (int64_t j = 0; j < length; ++j) y_row[j] = float(std::exp(double(x_row[j]) - max) / sum);
    }
  }
}

}  // namespace

REFERENCE_KERNEL(reduce_sum) {
  // x is any shape, y has x's rank; axes where y is 1 and x is not are summed, the others match
  expect_arity(args, {"x"}, {"y"});
  const lamina_view& xv = args.inputs[0];
  const lamina_view& yv = args.outputs[0];
  expect_reduce_shapes(xv, yv);
  const int32_t rank = xv.ndim;

  // Element strides of y along x's axes, 0 on summed axes so that every x element finds its sum.
  int64_t stride_y[LAMINA_MAX_DIMS];
  int64_t step = 1;
  for (int32_t d = rank - 1; d >= 0; --d) {
    stride_y[d] = yv.shape[d] == 1 ? 0 : step;
    step *= yv.shape[d];
  }

  const float* x = input(args, 0);
  float* y = output(args, 0);
  std::vector<double> sums(size_t(sdk::view_size(yv)), 0.0);
  const int64_t n = sdk::view_size(xv);
  if (n > 0 && rank == 0) sums[0] = x[0];
  if (n > 0 && rank > 0) {
    const int64_t inner = xv.shape[rank - 1];
    const int64_t inner_y = stride_y[rank - 1];
    int64_t index[LAMINA_MAX_DIMS] = {};
    for (int64_t row = 0; row < n / inner; ++row) {
      int64_t offset_y = 0;
      for (int32_t d = 0; d < rank - 1; ++d) offset_y += index[d] * stride_y[d];
      const float* x_row = x + row * inner;
      double* sum_row = sums.data() + offset_y;
      for (int64_t j = 0; j < inner; ++j) sum_row[j * inner_y] += x_row[j];
      for (int32_t d = rank - 2; d >= 0; --d) {
        if (++index[d] < xv.shape[d]) break;
        index[d] = 0;
      }
    }
  }
  for (size_t i = 0; i < sums.size(); ++i) y[i] = float(sums[i]);
}

REFERENCE_KERNEL(softmax) {
  softmax_rows<false>(args);
}

REFERENCE_KERNEL(log_softmax) {
  softmax_rows<true>(args);
}

// The fused losses (docs/ops.md): prediction p and target t of one shape; the forward ops write the
// scalar loss, the backward ops take its gradient g (one value) and write dp.

REFERENCE_KERNEL(mean_squared_error) {
  // loss = Σ (p - t)² / n
  expect_arity(args, {"p", "t"}, {"loss"});
  expect_same_shape(args.inputs[0], "p", args.inputs[1], "t");
  if (sdk::view_size(args.outputs[0]) != 1) throw sdk::Error("loss must hold one value");
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float* p = input(args, 0);
  const float* t = input(args, 1);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (double(p[i]) - t[i]) * (double(p[i]) - t[i]);
  output(args, 0)[0] = float(sum / double(std::max<int64_t>(n, 1)));
}

REFERENCE_KERNEL(mean_squared_error_backward) {
  // dp = 2 (p - t) / n · g
  expect_arity(args, {"p", "t", "g"}, {"dp"});
  expect_same_shape(args.inputs[0], "p", args.inputs[1], "t");
  expect_same_shape(args.inputs[0], "p", args.outputs[0], "dp");
  if (sdk::view_size(args.inputs[2]) != 1) throw sdk::Error("g must hold one value");
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float* p = input(args, 0);
  const float* t = input(args, 1);
  const double factor = 2.0 * double(input(args, 2)[0]) / double(std::max<int64_t>(n, 1));
  float* dp = output(args, 0);
  for (int64_t i = 0; i < n; ++i) dp[i] = float((double(p[i]) - t[i]) * factor);
}

namespace {

// The rows of the last axis of softmax_cross_entropy's logits: (rows, classes).
std::pair<int64_t, int64_t> loss_rows(const lamina_view& z) {
  if (z.ndim < 1) throw sdk::Error("the logits must have rank >= 1, got a scalar");
  const int64_t classes = z.shape[z.ndim - 1];
  return {classes ? sdk::view_size(z) / classes : 0, classes};
}

}  // namespace

REFERENCE_KERNEL(softmax_cross_entropy) {
  // loss = -Σ_rows Σ_j t_j (z_j - max - log Σ_k e^(z_k - max)) / rows
  expect_arity(args, {"z", "t"}, {"loss"});
  expect_same_shape(args.inputs[0], "z", args.inputs[1], "t");
  if (sdk::view_size(args.outputs[0]) != 1) throw sdk::Error("loss must hold one value");
  const auto [rows, classes] = loss_rows(args.inputs[0]);
  const float* z = input(args, 0);
  const float* t = input(args, 1);
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = z + r * classes;
    const float* tr = t + r * classes;
    double max = zr[0];
    for (int64_t j = 1; j < classes; ++j) max = std::max(max, double(zr[j]));
    double sum = 0.0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(double(zr[j]) - max);
    const double log_sum = std::log(sum);
    for (int64_t j = 0; j < classes; ++j) total -= double(tr[j]) * (double(zr[j]) - max - log_sum);
  }
  output(args, 0)[0] = float(total / double(std::max<int64_t>(rows, 1)));
}

REFERENCE_KERNEL(softmax_cross_entropy_backward) {
  // dz_j = (softmax(z)_j · Σ_k t_k - t_j) / rows · g
  expect_arity(args, {"z", "t", "g"}, {"dz"});
  expect_same_shape(args.inputs[0], "z", args.inputs[1], "t");
  expect_same_shape(args.inputs[0], "z", args.outputs[0], "dz");
  if (sdk::view_size(args.inputs[2]) != 1) throw sdk::Error("g must hold one value");
  const auto [rows, classes] = loss_rows(args.inputs[0]);
  const float* z = input(args, 0);
  const float* t = input(args, 1);
  const double factor = double(input(args, 2)[0]) / double(std::max<int64_t>(rows, 1));
  float* dz = output(args, 0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = z + r * classes;
    const float* tr = t + r * classes;
    double max = zr[0];
    for (int64_t j = 1; j < classes; ++j) max = std::max(max, double(zr[j]));
    double sum = 0.0, mass = 0.0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(double(zr[j]) - max), mass += tr[j];
    for (int64_t j = 0; j < classes; ++j)
      dz[r * classes + j] = float((std::exp(double(zr[j]) - max) / sum * mass - tr[j]) * factor);
  }
}

}  // namespace lamina::reference
