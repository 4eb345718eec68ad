// Element-wise kernels: copy, fill, unary maps, their backward rules, and broadcasting binary ops.
#include "kernels.hpp"

#include <algorithm>
#include <cmath>

namespace lamina::reference {
namespace {

// y = f(x) element by element, computed in double.
template <class F>
void unary(const sdk::KernelArgs& args, F f) {
  // x is any shape, y is x's shape
  expect_arity(args, {"x"}, {"y"});
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "y");
  const float* x = input(args, 0);
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = float(f(double(x[i])));
}

// dx = f(a, dy) element by element, where `a` is the forward op's input or output.
template <class F>
void backward(const sdk::KernelArgs& args, const char* a_name, F f) {
  // a, dy and dx all have the same shape
  expect_arity(args, {a_name, "dy"}, {"dx"});
  expect_same_shape(args.inputs[0], a_name, args.inputs[1], "dy");
  expect_same_shape(args.inputs[1], "dy", args.outputs[0], "dx");
  const float* a = input(args, 0);
  const float* dy = input(args, 1);
  float* dx = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) dx[i] = float(f(double(a[i]), double(dy[i])));
}

// y = f(a, b) with broadcasting: a, b and y have the same rank and each dim of a and b is y's or 1.
template <class F>
void binary(const sdk::KernelArgs& args, F f) {
  expect_arity(args, {"a", "b"}, {"y"});
  const lamina_view& av = args.inputs[0];
  const lamina_view& bv = args.inputs[1];
  const lamina_view& yv = args.outputs[0];
  expect_broadcast_shapes(av, bv, yv);
  const int32_t rank = yv.ndim;

  // Element strides of a and b along y's axes, 0 on broadcast axes so one index walks all three.
  int64_t stride_a[LAMINA_MAX_DIMS], stride_b[LAMINA_MAX_DIMS];
  int64_t step_a = 1, step_b = 1;
  for (int32_t d = rank - 1; d >= 0; --d) {
    stride_a[d] = av.shape[d] == 1 ? 0 : step_a;
    stride_b[d] = bv.shape[d] == 1 ? 0 : step_b;
    step_a *= av.shape[d];
    step_b *= bv.shape[d];
  }

  const float* a = input(args, 0);
  const float* b = input(args, 1);
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(yv);
  if (n == 0) return;
  if (rank == 0) {
    y[0] = float(f(double(a[0]), double(b[0])));
    return;
  }

  // Rows along the last axis; `index` is the position of the current row in y's outer axes.
  const int64_t inner = yv.shape[rank - 1];
  const int64_t inner_a = stride_a[rank - 1], inner_b = stride_b[rank - 1];
  int64_t index[LAMINA_MAX_DIMS] = {};
  for (int64_t row = 0; row < n / inner; ++row) {
    int64_t offset_a = 0, offset_b = 0;
    for (int32_t d = 0; d < rank - 1; ++d) {
      offset_a += index[d] * stride_a[d];
      offset_b += index[d] * stride_b[d];
    }
    const float* a_row = a + offset_a;
    const float* b_row = b + offset_b;
    float* y_row = y + row * inner;
    for (int64_t j = 0; j < inner; ++j)
      y_row[j] = float(f(double(a_row[j * inner_a]), double(b_row[j * inner_b])));
    for (int32_t d = rank - 2; d >= 0; --d) {
      if (++index[d] < yv.shape[d]) break;
      index[d] = 0;
    }
  }
}

// y = a where cond ≠ 0, else b, with broadcasting: the three inputs have y's rank and each of
// their dims is y's or 1.
void where_loop(const sdk::KernelArgs& args) {
  expect_arity(args, {"cond", "a", "b"}, {"y"});
  const lamina_view& yv = args.outputs[0];
  const char* names[3] = {"cond", "a", "b"};
  int64_t stride[3][LAMINA_MAX_DIMS];
  for (int k = 0; k < 3; ++k) {
    const lamina_view& v = args.inputs[k];
    if (v.ndim != yv.ndim)
      throw sdk::Error(std::string(names[k]) + " " + shape_string(v) + " does not have y " +
                       shape_string(yv) + "'s rank");
    int64_t step = 1;
    for (int32_t d = yv.ndim - 1; d >= 0; --d) {
      if (v.shape[d] != yv.shape[d] && v.shape[d] != 1)
        throw sdk::Error("cannot broadcast " + std::string(names[k]) + " " + shape_string(v) + " to y " +
                         shape_string(yv));
      stride[k][d] = v.shape[d] == 1 ? 0 : step;
      step *= v.shape[d];
    }
  }
  const float* c = input(args, 0);
  const float* a = input(args, 1);
  const float* b = input(args, 2);
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(yv);
  int64_t index[LAMINA_MAX_DIMS] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t offset[3] = {0, 0, 0};
    for (int k = 0; k < 3; ++k)
      for (int32_t d = 0; d < yv.ndim; ++d) offset[k] += index[d] * stride[k][d];
    y[i] = c[offset[0]] != 0.0f ? a[offset[1]] : b[offset[2]];
    for (int32_t d = yv.ndim - 1; d >= 0; --d) {
      if (++index[d] < yv.shape[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

REFERENCE_KERNEL(copy) {
  // x and y have the same number of elements; y = x, element by element in row-major order
  expect_arity(args, {"x"}, {"y"});
  const int64_t n = sdk::view_size(args.outputs[0]);
  if (sdk::view_size(args.inputs[0]) != n)
    throw sdk::Error("x " + shape_string(args.inputs[0]) + " and y " + shape_string(args.outputs[0]) +
                     " differ in size");
  const float* x = input(args, 0);
  float* y = output(args, 0);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i];
}

REFERENCE_KERNEL(fill) {
  // y is any shape
  expect_arity(args, {}, {"y"});
  args.attrs.need("value");
  const float value = float(args.attrs.get_float("value", 0.0));
  float* y = output(args, 0);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

REFERENCE_KERNEL(neg) {
  unary(args, [](double x) { return -x; });
}
REFERENCE_KERNEL(exp) {
  unary(args, [](double x) { return std::exp(x); });
}
REFERENCE_KERNEL(log) {
  unary(args, [](double x) { return std::log(x); });
}
REFERENCE_KERNEL(sqrt) {
  unary(args, [](double x) { return std::sqrt(x); });
}
REFERENCE_KERNEL(square) {
  unary(args, [](double x) { return x * x; });
}
REFERENCE_KERNEL(relu) {
  unary(args, [](double x) { return x > 0.0 ? x : 0.0; });
}
REFERENCE_KERNEL(sigmoid) {
  unary(args, [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
}
REFERENCE_KERNEL(tanh) {
  unary(args, [](double x) { return std::tanh(x); });
}
REFERENCE_KERNEL(erf) {
  unary(args, [](double x) { return std::erf(x); });
}

REFERENCE_KERNEL(scale) {
  const double alpha = args.attrs.get_float("alpha", 1.0);
  const double beta = args.attrs.get_float("beta", 0.0);
  unary(args, [=](double x) { return alpha * x + beta; });
}

REFERENCE_KERNEL(clip) {
  args.attrs.need("low");
  args.attrs.need("high");
  const double low = args.attrs.get_float("low", 0.0);
  const double high = args.attrs.get_float("high", 0.0);
  unary(args, [=](double x) { return std::min(std::max(x, low), high); });
}

REFERENCE_KERNEL(relu_backward) {
  backward(args, "x", [](double x, double dy) { return x > 0.0 ? dy : 0.0; });
}
REFERENCE_KERNEL(sigmoid_backward) {
  backward(args, "y", [](double y, double dy) { return dy * y * (1.0 - y); });
}
REFERENCE_KERNEL(tanh_backward) {
  backward(args, "y", [](double y, double dy) { return dy * (1.0 - y * y); });
}

REFERENCE_KERNEL(clip_backward) {
  args.attrs.need("low");
  args.attrs.need("high");
  const double low = args.attrs.get_float("low", 0.0);
  const double high = args.attrs.get_float("high", 0.0);
  backward(args, "x", [=](double x, double dy) { return low <= x && x <= high ? dy : 0.0; });
}

REFERENCE_KERNEL(add) {
  binary(args, [](double a, double b) { return a + b; });
}
REFERENCE_KERNEL(sub) {
  binary(args, [](double a, double b) { return a - b; });
}
REFERENCE_KERNEL(mul) {
  binary(args, [](double a, double b) { return a * b; });
}
REFERENCE_KERNEL(div) {
  binary(args, [](double a, double b) { return a / b; });
}

// sign(NaN) is NaN, as in NumPy; round is nearbyint in the default rounding mode: halves to even.
REFERENCE_KERNEL(sign) {
  unary(args, [](double x) { return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == 0.0 ? 0.0 : x; });
}
REFERENCE_KERNEL(abs) {
  unary(args, [](double x) { return std::fabs(x); });
}
REFERENCE_KERNEL(floor) {
  unary(args, [](double x) { return std::floor(x); });
}
REFERENCE_KERNEL(round) {
  unary(args, [](double x) { return std::nearbyint(x); });
}

REFERENCE_KERNEL(greater) {
  binary(args, [](double a, double b) { return a > b ? 1.0 : 0.0; });
}
REFERENCE_KERNEL(greater_equal) {
  binary(args, [](double a, double b) { return a >= b ? 1.0 : 0.0; });
}
REFERENCE_KERNEL(less) {
  binary(args, [](double a, double b) { return a < b ? 1.0 : 0.0; });
}
REFERENCE_KERNEL(less_equal) {
  binary(args, [](double a, double b) { return a <= b ? 1.0 : 0.0; });
}
REFERENCE_KERNEL(equal) {
  binary(args, [](double a, double b) { return a == b ? 1.0 : 0.0; });
}
REFERENCE_KERNEL(not_equal) {
  binary(args, [](double a, double b) { return a != b ? 1.0 : 0.0; });
}

REFERENCE_KERNEL(where) {
  where_loop(args);
}

// a on a tie, as the gradient rule assumes; NaN in a or b gives NaN, as in NumPy
REFERENCE_KERNEL(maximum) {
  binary(args, [](double a, double b) { return a >= b ? a : b > a ? b : a + b; });
}
REFERENCE_KERNEL(minimum) {
  binary(args, [](double a, double b) { return a <= b ? a : b < a ? b : a + b; });
}
REFERENCE_KERNEL(pow) {
  binary(args, [](double a, double b) { return std::pow(a, b); });
}

}  // namespace lamina::reference
