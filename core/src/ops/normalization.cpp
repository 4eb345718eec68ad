// Batch normalization over the last axis (the channels of NHWC, the features of (N, C)):
// batch_norm_train, its backward op, and batch_norm_inference.
//
// x has C values along its last axis and any number of axes before it; the statistics are over
// every axis but the last (m = x.size / C values per channel), the variance biased (divided by m),
// as Keras computes it. gamma, beta, mean and variance are (C,).
#include "op_set.hpp"

#include "../autograd.hpp"
#include "../dispatch.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <string>
#include <vector>

namespace lamina {

namespace {

// Every axis but the last.
std::vector<int64_t> row_axes(const Shape& x) {
  std::vector<int64_t> axes;
  for (int64_t a = 0; a + 1 < int64_t(x.size()); ++a) axes.push_back(a);
  return axes;
}

// The values each channel's statistics are over.
double per_channel(const Shape& x) {
  const int64_t c = x.back();
  return c > 0 ? double(shape_size(x) / c) : 0.0;
}

// (C,) as (1, ..., 1, C), to broadcast against x.
Tensor broadcastable(const Tensor& v, const Shape& x) {
  Shape s(x.size(), 1);
  s.back() = x.back();
  return ops::reshape(v, s);
}

// x of rank >= 2 with C channels last, and inputs first..end all of shape (C,).
int64_t check_channels(const std::string& op, const ShapeList& in, size_t first, size_t end,
                       const char* names) {
  const Shape& x = in[0];
  if (x.size() < 2)
    throw Error(op_context(op, in) + ": x needs a batch axis and a channel axis (the last), got rank " +
                std::to_string(x.size()));
  const int64_t c = x.back();
  for (size_t i = first; i < end; ++i)
    if (in[i] != Shape{c})
      throw Error(op_context(op, in) + ": " + names + " must each have shape (" + std::to_string(c) +
                  ",), one value per channel of x's last axis");
  return c;
}

double epsilon_of(const std::string& op, const ShapeList& in, const Attributes& a) {
  const double eps = a.get_float("epsilon", 1e-3);
  if (!(eps >= 0.0)) throw Error(op_context(op, in) + ": epsilon must be >= 0, got " + std::to_string(eps));
  return eps;
}

// 1 / √(variance + epsilon), (C,).
Tensor inverse_std(const Tensor& variance, double eps) {
  return ops::div(ops::full(variance.shape(), 1.0f), ops::sqrt(ops::scale(variance, 1.0, eps)));
}

}  // namespace

void define_normalization_ops(OpSet& set) {
  // batch_norm_train: x, gamma, beta → y, mean, variance (the batch's, biased), with
  // y = gamma · (x − mean) / √(variance + epsilon) + beta.
  OpDef& train = set.def("batch_norm_train", {"epsilon"});
  train.optional_output_gradients = true;
  train.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("batch_norm_train", in, 3);
    const int64_t c = check_channels("batch_norm_train", in, 1, 3, "gamma and beta");
    epsilon_of("batch_norm_train", in, a);
    return std::vector<Shape>{in[0], {c}, {c}};
  };
  train.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    const Shape& shape = in[0].shape();
    const std::vector<int64_t> rows = row_axes(shape);
    const double m = per_channel(shape);
    const double scale = m > 0 ? 1.0 / m : 0.0;
    Tensor mean = ops::scale(ops::reduce_sum(in[0], rows, true), scale);
    Tensor centered = ops::sub(in[0], mean);
    Tensor variance = ops::scale(ops::reduce_sum(ops::square(centered), rows, true), scale);
    const Shape channels{shape.back()};
    Tensor inv = ops::mul(broadcastable(in[1], shape), inverse_std(variance, a.get_float("epsilon", 1e-3)));
    Tensor y = ops::add(ops::mul(centered, inv), broadcastable(in[2], shape));
    return std::vector<Tensor>{y, ops::reshape(mean, channels), ops::reshape(variance, channels)};
  };

  // batch_norm_train_backward: x, gamma, mean, variance, dy → dx, dgamma, dbeta, the gradient of
  // batch_norm_train's y with its statistics differentiated through. With x̂ = (x − mean)·r,
  // r = 1/√(variance + ε): dbeta = Σ dy, dgamma = Σ dy·x̂, dx = gamma·r/m · (m·dy − dbeta − x̂·dgamma).
  OpDef& train_bw = set.def("batch_norm_train_backward", {"epsilon"});
  train_bw.gradient_of = "batch_norm_train";
  train_bw.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("batch_norm_train_backward", in, 5);
    const int64_t c = check_channels("batch_norm_train_backward", in, 1, 4, "gamma, mean and variance");
    if (in[4] != in[0]) throw Error(op_context("batch_norm_train_backward", in) + ": dy must have x's shape");
    epsilon_of("batch_norm_train_backward", in, a);
    return std::vector<Shape>{in[0], {c}, {c}};
  };
  train_bw.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    const Shape& shape = in[0].shape();
    const std::vector<int64_t> rows = row_axes(shape);
    const double m = per_channel(shape);
    const Tensor r = inverse_std(in[3], a.get_float("epsilon", 1e-3));
    const Tensor& dy = in[4];
    Tensor xhat = ops::mul(ops::sub(in[0], broadcastable(in[2], shape)), broadcastable(r, shape));
    Tensor dbeta = ops::reduce_sum(dy, rows, false);
    Tensor dgamma = ops::reduce_sum(ops::mul(dy, xhat), rows, false);
    Tensor centered_dy = ops::sub(ops::sub(ops::scale(dy, m), broadcastable(dbeta, shape)),
                                  ops::mul(xhat, broadcastable(dgamma, shape)));
    Tensor k = ops::scale(ops::mul(in[1], r), m > 0 ? 1.0 / m : 0.0);
    return std::vector<Tensor>{ops::mul(centered_dy, broadcastable(k, shape)), dgamma, dbeta};
  };

  train.backward = [&train_bw](const Node& n, const Grads& g) {
    const Tensor& x = n.inputs[0];
    Grads out(3);
    Tensor dx;
    if (g[0].defined()) {
      std::vector<Tensor> d = run_op(train_bw, {x, n.inputs[1], n.outputs[1], n.outputs[2], g[0]}, n.attrs);
      dx = d[0];
      if (wants(n, 1)) out[1] = d[1];
      if (wants(n, 2)) out[2] = d[2];
    }
    // Where the statistics themselves reach the loss: d mean/dx = 1/m, d variance/dx = 2(x − mean)/m.
    const double m = per_channel(x.shape());
    const double scale = m > 0 ? 1.0 / m : 0.0;
    auto add_to_dx = [&](const Tensor& t) { dx = dx.defined() ? ops::add(dx, t) : t; };
    if (g[1].defined())
      add_to_dx(ops::mul(ops::full(x.shape(), float(scale)), broadcastable(g[1], x.shape())));
    if (g[2].defined())
      add_to_dx(ops::mul(ops::scale(ops::sub(x, broadcastable(n.outputs[1], x.shape())), 2.0 * scale),
                         broadcastable(g[2], x.shape())));
    if (wants(n, 0)) out[0] = dx;
    return out;
  };

  // batch_norm_inference: x, gamma, beta, mean, variance → y = gamma·(x − mean)/√(variance + ε) + beta,
  // with given statistics (the moving ones).
  OpDef& inference = set.def("batch_norm_inference", {"epsilon"});
  inference.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("batch_norm_inference", in, 5);
    check_channels("batch_norm_inference", in, 1, 5, "gamma, beta, mean and variance");
    epsilon_of("batch_norm_inference", in, a);
    return one_shape(in[0]);
  };
  // y = x·k + (beta − mean·k), k = gamma·r: two passes over x.
  inference.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    const Shape& shape = in[0].shape();
    Tensor k = ops::mul(in[1], inverse_std(in[4], a.get_float("epsilon", 1e-3)));
    Tensor shift = ops::sub(in[2], ops::mul(in[3], k));
    return std::vector<Tensor>{
        ops::add(ops::mul(in[0], broadcastable(k, shape)), broadcastable(shift, shape))};
  };
  // Every input may be differentiated (a frozen layer in a trained model still passes dx back).
  inference.backward = [](const Node& n, const Grads& g) {
    const Tensor& x = n.inputs[0];
    const Shape& shape = x.shape();
    const std::vector<int64_t> rows = row_axes(shape);
    const Tensor r = inverse_std(n.inputs[4], n.attrs.get_float("epsilon", 1e-3));
    const Tensor& dy = g[0];
    Grads out(5);
    if (wants(n, 0)) out[0] = ops::mul(dy, broadcastable(ops::mul(n.inputs[1], r), shape));
    if (wants(n, 2)) out[2] = ops::reduce_sum(dy, rows, false);
    if (wants(n, 1) || wants(n, 4)) {
      // Σ dy·(x − mean), per channel
      Tensor s = ops::reduce_sum(ops::mul(dy, ops::sub(x, broadcastable(n.inputs[3], shape))), rows, false);
      if (wants(n, 1)) out[1] = ops::mul(s, r);
      // d r/d variance = −r³/2
      if (wants(n, 4))
        out[4] = ops::mul(ops::mul(s, n.inputs[1]), ops::scale(ops::mul(ops::square(r), r), -0.5));
    }
    if (wants(n, 3)) out[3] = ops::neg(ops::mul(ops::reduce_sum(dy, rows, false), ops::mul(n.inputs[1], r)));
    return out;
  };
}

}  // namespace lamina
