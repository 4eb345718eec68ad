// The C++ ops API (lamina/ops.hpp) and Tensor's arithmetic (lamina/tensor.hpp): each a call of
// run_op with the op looked up once per call site.
#include "dispatch.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace lamina {

namespace ops {
static Tensor one(const OpDef& op, const std::vector<Tensor>& in, const Attributes& a = {}) {
  return run_op(op, in, a)[0];
}
Tensor add(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("add"), {a, b});
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("sub"), {a, b});
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("mul"), {a, b});
}
Tensor div(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("div"), {a, b});
}
Tensor neg(const Tensor& x) {
  return one(LAMINA_OP("neg"), {x});
}
Tensor exp(const Tensor& x) {
  return one(LAMINA_OP("exp"), {x});
}
Tensor log(const Tensor& x) {
  return one(LAMINA_OP("log"), {x});
}
Tensor sqrt(const Tensor& x) {
  return one(LAMINA_OP("sqrt"), {x});
}
Tensor square(const Tensor& x) {
  return one(LAMINA_OP("square"), {x});
}
Tensor relu(const Tensor& x) {
  return one(LAMINA_OP("relu"), {x});
}
Tensor sigmoid(const Tensor& x) {
  return one(LAMINA_OP("sigmoid"), {x});
}
Tensor tanh(const Tensor& x) {
  return one(LAMINA_OP("tanh"), {x});
}
Tensor erf(const Tensor& x) {
  return one(LAMINA_OP("erf"), {x});
}
Tensor sign(const Tensor& x) {
  return one(LAMINA_OP("sign"), {x});
}
Tensor abs(const Tensor& x) {
  return one(LAMINA_OP("abs"), {x});
}
Tensor floor(const Tensor& x) {
  return one(LAMINA_OP("floor"), {x});
}
Tensor round(const Tensor& x) {
  return one(LAMINA_OP("round"), {x});
}
Tensor greater(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("greater"), {a, b});
}
Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("greater_equal"), {a, b});
}
Tensor less(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("less"), {a, b});
}
Tensor less_equal(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("less_equal"), {a, b});
}
Tensor equal(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("equal"), {a, b});
}
Tensor not_equal(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("not_equal"), {a, b});
}
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("where"), {cond, a, b});
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("maximum"), {a, b});
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("minimum"), {a, b});
}
Tensor pow(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("pow"), {a, b});
}
Tensor pow(const Tensor& a, double exponent) {
  return pow(a, full({}, float(exponent)));
}
Tensor scale(const Tensor& x, double alpha, double beta) {
  return one(LAMINA_OP("scale"), {x}, Attributes().set("alpha", alpha).set("beta", beta));
}
Tensor clip(const Tensor& x, double low, double high) {
  return one(LAMINA_OP("clip"), {x}, Attributes().set("low", low).set("high", high));
}
Tensor softmax(const Tensor& x) {
  return one(LAMINA_OP("softmax"), {x});
}
Tensor log_softmax(const Tensor& x) {
  return one(LAMINA_OP("log_softmax"), {x});
}
Tensor reduce_sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdims) {
  return one(LAMINA_OP("reduce_sum"), {x}, Attributes().set("axes", axes).set("keepdims", int64_t(keepdims)));
}
Tensor sum(const Tensor& x) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.ndim(); ++i) axes.push_back(i);
  return reduce_sum(x, axes, false);
}
Tensor mean(const Tensor& x) {
  return scale(sum(x), 1.0 / double(std::max<int64_t>(x.size(), 1)));
}
Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return one(LAMINA_OP("matmul"), {a, b},
             Attributes().set("transpose_a", int64_t(ta)).set("transpose_b", int64_t(tb)));
}
Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias, bool ta, bool tb,
                   const std::string& activation) {
  return one(LAMINA_OP("matmul_bias"), {a, b, bias},
             Attributes()
                 .set("transpose_a", int64_t(ta))
                 .set("transpose_b", int64_t(tb))
                 .set("activation", activation));
}
Tensor mean_squared_error(const Tensor& pred, const Tensor& target) {
  return one(LAMINA_OP("mean_squared_error"), {pred, target});
}
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target) {
  return one(LAMINA_OP("softmax_cross_entropy"), {logits, target});
}
Tensor reshape(const Tensor& x, const Shape& shape) {
  return one(LAMINA_OP("reshape"), {x}, Attributes().set("shape", shape));
}
Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  return one(LAMINA_OP("concat"), xs, Attributes().set("axis", axis));
}
Tensor slice(const Tensor& x, const std::vector<int64_t>& axes, const std::vector<int64_t>& begin,
             const std::vector<int64_t>& end, const std::vector<int64_t>& step) {
  Attributes a;
  a.set("axes", axes).set("begin", begin).set("end", end);
  if (!step.empty()) a.set("step", step);
  return one(LAMINA_OP("slice"), {x}, a);
}
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads_before, const std::vector<int64_t>& pads_after,
           double value) {
  return one(LAMINA_OP("pad"), {x},
             Attributes().set("pads_before", pads_before).set("pads_after", pads_after).set("value", value));
}
Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  return one(LAMINA_OP("transpose"), {x}, Attributes().set("perm", perm));
}
Tensor gather(const Tensor& table, const Tensor& indices) {
  return one(LAMINA_OP("gather"), {table, indices}, Attributes());
}

namespace {
// strides and pads, and dilation and groups where they are not 1 (a plain convolution's attributes
// read as they did before those existed).
Attributes conv_attrs(const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                      const std::vector<int64_t>& dilation, int64_t groups) {
  Attributes a;
  a.set("strides", strides).set("pads", pads);
  if (dilation != std::vector<int64_t>{1, 1}) a.set("dilation", dilation);
  if (groups != 1) a.set("groups", groups);
  return a;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const std::vector<int64_t>& strides,
              const std::vector<int64_t>& pads, const std::vector<int64_t>& dilation, int64_t groups) {
  return one(LAMINA_OP("conv2d"), {x, w}, conv_attrs(strides, pads, dilation, groups));
}
Tensor conv2d_transpose(const Tensor& x, const Tensor& w, const std::vector<int64_t>& output_size,
                        const std::vector<int64_t>& strides, const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("conv2d_transpose"), {x, w},
             Attributes().set("output_size", output_size).set("strides", strides).set("pads", pads));
}
Tensor conv2d_bias(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& strides,
                   const std::vector<int64_t>& pads, const std::string& activation,
                   const std::vector<int64_t>& dilation, int64_t groups) {
  return one(LAMINA_OP("conv2d_bias"), {x, w, b},
             conv_attrs(strides, pads, dilation, groups).set("activation", activation));
}
Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("max_pool2d"), {x},
             Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("avg_pool2d"), {x},
             Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor dropout_mask(const Shape& shape, double rate, uint64_t seed) {
  return one(LAMINA_OP("dropout_mask"), {},
             Attributes().set("shape", shape).set("rate", rate).set("seed", int64_t(seed)));
}
Tensor random_normal(const Shape& shape, double mean, double stddev, uint64_t seed) {
  return one(
      LAMINA_OP("random_normal"), {},
      Attributes().set("shape", shape).set("mean", mean).set("stddev", stddev).set("seed", int64_t(seed)));
}
Tensor full(const Shape& shape, float value) {
  return one(LAMINA_OP("fill"), {}, Attributes().set("shape", shape).set("value", double(value)));
}
}  // namespace ops

Tensor Tensor::reshape(const Shape& shape) const {
  return ops::reshape(*this, shape);
}

Tensor operator+(const Tensor& a, const Tensor& b) {
  return ops::add(a, b);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return ops::sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return ops::mul(a, b);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return ops::div(a, b);
}
Tensor operator+(const Tensor& a, float b) {
  return ops::scale(a, 1.0, b);
}
Tensor operator-(const Tensor& a, float b) {
  return ops::scale(a, 1.0, -double(b));
}
Tensor operator*(const Tensor& a, float b) {
  return ops::scale(a, b, 0.0);
}
Tensor operator/(const Tensor& a, float b) {
  return ops::scale(a, 1.0 / double(b), 0.0);
}
Tensor operator-(const Tensor& a) {
  return ops::neg(a);
}
Tensor operator>(const Tensor& a, float b) {
  return ops::greater(a, ops::full({}, b));
}
Tensor operator<(const Tensor& a, float b) {
  return ops::less(a, ops::full({}, b));
}

}  // namespace lamina
