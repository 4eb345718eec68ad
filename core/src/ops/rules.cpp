// Shape and gradient helpers of the op families (ops/rules.hpp).
#include "rules.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>

#include <algorithm>

namespace lamina {

namespace {

std::vector<int64_t> pair_attr(const Attributes& a, const char* name, std::vector<int64_t> fallback,
                               size_t n) {
  auto v = a.get_ints(name, std::move(fallback));
  if (v.size() != n)
    throw Error(std::string("op attribute '") + name + "' needs " + std::to_string(n) + " values");
  return v;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Shape rules

void need_inputs(const std::string& op, const ShapeList& in, size_t n) {
  if (in.size() != n)
    throw Error("op '" + op + "' takes " + std::to_string(n) + " inputs, got " + std::to_string(in.size()));
}

std::vector<Shape> one_shape(Shape s) {
  std::vector<Shape> out;
  out.push_back(std::move(s));
  return out;
}

Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(op_context(op, {a, b}) + ": shapes cannot be broadcast together (dimension " +
                  std::to_string(i) + ": " + std::to_string(da) + " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<Shape> same_shape(const ShapeList& in, const Attributes&) {
  return one_shape(in[0]);
}

int64_t window_out(const std::string& op, int64_t in, int64_t k, int64_t s, int64_t pad_a, int64_t pad_b) {
  if (s < 1) throw Error("op '" + op + "': strides must be positive");
  int64_t span = in + pad_a + pad_b - k;
  if (span < 0)
    throw Error("op '" + op + "': window of " + std::to_string(k) + " does not fit an input of " +
                std::to_string(in) + " (with padding " + std::to_string(pad_a) + "+" + std::to_string(pad_b) +
                "); the input is too small for this layer — use padding \"same\" or a smaller kernel");
  return span / s + 1;
}

Shape conv_out(const std::string& op, const Shape& x, const Shape& w, const Attributes& a) {
  if (x.size() != 4) throw Error(op_context(op, {x, w}) + ": input must be (N, H, W, C)");
  if (w.size() != 4) throw Error(op_context(op, {x, w}) + ": kernel must be (KH, KW, C / groups, O)");
  const int64_t groups = a.get_int("groups", 1);
  if (groups < 1)
    throw Error(op_context(op, {x, w}) + ": groups must be >= 1, got " + std::to_string(groups));
  if (x[3] % groups != 0 || w[3] % groups != 0)
    throw Error(op_context(op, {x, w}) + ": groups " + std::to_string(groups) + " must divide the input's " +
                std::to_string(x[3]) + " channels and the kernel's " + std::to_string(w[3]) +
                " output channels");
  if (x[3] / groups != w[2])
    throw Error(
        op_context(op, {x, w}) + ": input has " + std::to_string(x[3]) + " channels" +
        (groups > 1 ? " in " + std::to_string(groups) + " groups of " + std::to_string(x[3] / groups) : "") +
        ", the kernel expects " + std::to_string(w[2]) + (groups > 1 ? " per group" : ""));
  auto s = pair_attr(a, "strides", {1, 1}, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  auto d = pair_attr(a, "dilation", {1, 1}, 2);
  if (d[0] < 1 || d[1] < 1)
    throw Error(op_context(op, {x, w}) + ": dilation must be >= 1, got [" + std::to_string(d[0]) + ", " +
                std::to_string(d[1]) + "]");
  // A kernel of k taps dilated by d spans (k − 1)·d + 1 input cells.
  return {x[0], window_out(op, x[1], (w[0] - 1) * d[0] + 1, s[0], p[0], p[1]),
          window_out(op, x[2], (w[1] - 1) * d[1] + 1, s[1], p[2], p[3]), w[3]};
}

Shape pool_out(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.size() != 4) throw Error(op_context(op, {x}) + ": input must be (N, H, W, C)");
  auto k = pair_attr(a, "pool", {2, 2}, 2);
  auto s = pair_attr(a, "strides", k, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  if (k[0] < 1 || k[1] < 1) throw Error("op '" + op + "': pool size must be positive");
  return {x[0], window_out(op, x[1], k[0], s[0], p[0], p[1]), window_out(op, x[2], k[1], s[1], p[2], p[3]),
          x[3]};
}

Shape matmul_out(const std::string& op, const ShapeList& in, const Attributes& a) {
  const Shape &x = in[0], &y = in[1];
  if (x.size() != 2 || y.size() != 2) throw Error(op_context(op, in) + ": both matrices must be 2-D");
  bool ta = a.get_int("transpose_a", 0), tb = a.get_int("transpose_b", 0);
  int64_t m = ta ? x[1] : x[0], k = ta ? x[0] : x[1];
  int64_t k2 = tb ? y[1] : y[0], n = tb ? y[0] : y[1];
  if (k != k2)
    throw Error(op_context(op, in) + ": inner dimensions differ (" + std::to_string(k) + " vs " +
                std::to_string(k2) + ")");
  return {m, n};
}

Activation read_activation(const std::string& op, const Attributes& a) {
  const Attributes::Item* item = a.find("activation");
  if (!item) return Activation::linear;
  if (item->type != LAMINA_ATTR_STRING)
    throw Error("op '" + op + "': attribute 'activation' must be a string (linear, relu, sigmoid, tanh)");
  const std::string& s = item->text;
  if (s == "linear" || s.empty()) return Activation::linear;
  if (s == "relu") return Activation::relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "tanh") return Activation::tanh;
  throw Error("op '" + op + "': unknown activation '" + s + "' (known: linear, relu, sigmoid, tanh)");
}

void check_bias(const std::string& op, const ShapeList& in, size_t index, int64_t n) {
  const Shape& b = in[index];
  if (b.size() != 1 || b[0] != n)
    throw Error(op_context(op, in) + ": the bias must have shape (" + std::to_string(n) +
                ",), one value per output");
}

std::vector<Shape> update_shapes(const std::string& op, const ShapeList& in, size_t min_inputs,
                                 size_t max_inputs) {
  if (in.size() < min_inputs || in.size() > max_inputs)
    throw Error("op '" + op + "' takes " + std::to_string(min_inputs) +
                (max_inputs > min_inputs ? " or " + std::to_string(max_inputs) : std::string()) +
                " inputs (param, grad, slots...), got " + std::to_string(in.size()));
  for (size_t i = 1; i < in.size(); ++i)
    if (in[i] != in[0])
      throw Error(op_context(op, in) + ": the gradient and every slot must have the parameter's shape");
  std::vector<Shape> out{in[0]};
  for (size_t i = 2; i < in.size(); ++i) out.push_back(in[i]);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Gradient helpers

Tensor sum_to(const Tensor& g, const Shape& shape) {
  const Shape& gs = g.shape();
  if (gs == shape) return g;
  size_t lead = gs.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) axes.push_back(int64_t(i));
  Tensor r = ops::reduce_sum(g, axes, true);
  return ops::reshape(r, shape);
}

bool wants(const Node& n, size_t i) {
  return needs_grad(n.inputs[i]);
}

Tensor apply_activation(Activation act, const Tensor& z) {
  switch (act) {
    case Activation::relu:
      return ops::relu(z);
    case Activation::sigmoid:
      return ops::sigmoid(z);
    case Activation::tanh:
      return ops::tanh(z);
    case Activation::linear:
      break;
  }
  return z;
}
// relu's rule takes its input, but y > 0 exactly where the input is, so its output serves as well.
Tensor activation_gradient(Activation act, const Tensor& y, const Tensor& dy) {
  switch (act) {
    case Activation::relu:
      return run_op("relu_backward", {y, dy})[0];
    case Activation::sigmoid:
      return run_op("sigmoid_backward", {y, dy})[0];
    case Activation::tanh:
      return run_op("tanh_backward", {y, dy})[0];
    case Activation::linear:
      break;
  }
  return dy;
}

}  // namespace lamina
