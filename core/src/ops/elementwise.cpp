// Element-wise ops: copy, fill, the unary ops (and the backward ops of relu, sigmoid, tanh and
// clip), the broadcasting binary ops add, sub, mul, div, erf, and the ops Keras' `ops` module has
// for masks and piecewise functions: sign, abs, floor, round, the comparisons, where, minimum,
// maximum and pow.
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <string>

namespace lamina {

void define_elementwise_ops(OpSet& set) {
  auto unary = [&](const std::string& name, BackwardFn backward, std::vector<std::string> attributes = {}) {
    OpDef& d = set.def(name, std::move(attributes));
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 1);
      return one_shape(in[0]);
    };
    d.backward = std::move(backward);
  };
  // dx = f(a, dy): the gradient op of `forward`
  auto pair_same = [&](const std::string& forward, std::vector<std::string> attributes = {}) {
    const std::string name = forward + "_backward";
    OpDef& d = set.def(name, std::move(attributes));
    d.gradient_of = forward;
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 2);
      if (in[0] != in[1]) throw Error(op_context(name, in) + ": both inputs must have the same shape");
      return one_shape(in[0]);
    };
  };

  OpDef& copy = set.def("copy");
  copy.infer = same_shape;
  copy.backward = [](const Node&, const Grads& g) { return Grads{g[0]}; };

  OpDef& fill = set.def("fill", {"shape", "value"});
  fill.shape_only_inputs = true;
  fill.infer = [](const ShapeList& in, const Attributes& a) {
    if (in.size() == 1) return one_shape(in[0]);
    return one_shape(a.get_ints("shape", {}));
  };

  unary("neg", [](const Node&, const Grads& g) { return Grads{ops::neg(g[0])}; });
  unary("exp", [](const Node& n, const Grads& g) { return Grads{ops::mul(g[0], n.outputs[0])}; });
  unary("log", [](const Node& n, const Grads& g) { return Grads{ops::div(g[0], n.inputs[0])}; });
  unary("sqrt",
        [](const Node& n, const Grads& g) { return Grads{ops::div(ops::scale(g[0], 0.5), n.outputs[0])}; });
  unary("square",
        [](const Node& n, const Grads& g) { return Grads{ops::mul(ops::scale(g[0], 2.0), n.inputs[0])}; });
  unary("relu", [](const Node& n, const Grads& g) {
    return Grads{run_op("relu_backward", {n.inputs[0], g[0]})[0]};
  });
  unary("sigmoid", [](const Node& n, const Grads& g) {
    return Grads{run_op("sigmoid_backward", {n.outputs[0], g[0]})[0]};
  });
  unary("tanh", [](const Node& n, const Grads& g) {
    return Grads{run_op("tanh_backward", {n.outputs[0], g[0]})[0]};
  });
  unary(
      "scale", [](const Node& n, const Grads& g) { return Grads{ops::scale(g[0], n.attrs.get_float("alpha", 1.0))}; },
      {"alpha", "beta"});
  unary(
      "clip", [](const Node& n, const Grads& g) { return Grads{run_op("clip_backward", {n.inputs[0], g[0]}, n.attrs)[0]}; },
      {"low", "high"});
  for (const char* forward : {"relu", "sigmoid", "tanh"}) pair_same(forward);
  pair_same("clip", {"low", "high"});

  auto binary = [&](const std::string& name, BackwardFn backward) {
    OpDef& d = set.def(name);
    d.broadcasts = true;
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 2);
      return one_shape(broadcast_shapes(name, in[0], in[1]));
    };
    d.backward = std::move(backward);
  };
  binary("add", [](const Node& n, const Grads& g) {
    return Grads{wants(n, 0) ? sum_to(g[0], n.inputs[0].shape()) : Tensor(),
                 wants(n, 1) ? sum_to(g[0], n.inputs[1].shape()) : Tensor()};
  });
  binary("sub", [](const Node& n, const Grads& g) {
    return Grads{wants(n, 0) ? sum_to(g[0], n.inputs[0].shape()) : Tensor(),
                 wants(n, 1) ? sum_to(ops::neg(g[0]), n.inputs[1].shape()) : Tensor()};
  });
  binary("mul", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    return Grads{wants(n, 0) ? sum_to(ops::mul(g[0], b), a.shape()) : Tensor(),
                 wants(n, 1) ? sum_to(ops::mul(g[0], a), b.shape()) : Tensor()};
  });
  binary("div", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    Tensor da = wants(n, 0) ? sum_to(ops::div(g[0], b), a.shape()) : Tensor();
    Tensor db =
        wants(n, 1) ? sum_to(ops::neg(ops::div(ops::mul(g[0], n.outputs[0]), b)), b.shape()) : Tensor();
    return Grads{da, db};
  });
  // erf (for the exact GELU): d/dx erf(x) = 2/√π · e^(−x²), from basic ops.
  unary("erf", [](const Node& n, const Grads& g) {
    const double two_over_sqrt_pi = 1.1283791670955126;
    return Grads{ops::mul(g[0], ops::scale(ops::exp(ops::neg(ops::square(n.inputs[0]))), two_over_sqrt_pi))};
  });

  // Piecewise-constant ops (sign, floor, round and the comparisons) have no backward rule: their
  // outputs are constants to autograd, so whatever they feed gets no gradient through them, which
  // is TensorFlow's zero gradient.
  auto constant = [&](const std::string& name) {
    OpDef& d = set.def(name);
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 1);
      return one_shape(in[0]);
    };
  };
  constant("sign");   // −1, 0 or 1
  constant("floor");  // the largest integer ≤ x
  constant("round");  // the nearest integer, halves to even (Keras' and NumPy's round)
  unary("abs", [](const Node& n, const Grads& g) { return Grads{ops::mul(g[0], ops::sign(n.inputs[0]))}; });

  // Comparisons: 1.0 where the relation holds, else 0.0, broadcasting like add.
  for (const char* name : {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"})
    binary(name, nullptr);

  // where(cond, a, b): a where cond ≠ 0, else b; the three broadcast together. cond gets no gradient.
  OpDef& where = set.def("where");
  where.broadcasts = true;
  where.infer = [](const ShapeList& in, const Attributes&) {
    need_inputs("where", in, 3);
    return one_shape(broadcast_shapes("where", broadcast_shapes("where", in[0], in[1]), in[2]));
  };
  where.backward = [](const Node& n, const Grads& g) {
    const Tensor zero = ops::full({}, 0.0f);
    const Tensor& c = n.inputs[0];
    return Grads{Tensor(), wants(n, 1) ? sum_to(ops::where(c, g[0], zero), n.inputs[1].shape()) : Tensor(),
                 wants(n, 2) ? sum_to(ops::where(c, zero, g[0]), n.inputs[2].shape()) : Tensor()};
  };

  // maximum and minimum: the gradient goes to the chosen input, to `a` on a tie (TensorFlow's rule).
  auto chosen = [](const char* compare) {
    return [compare](const Node& n, const Grads& g) {
      const Tensor &a = n.inputs[0], &b = n.inputs[1];
      const Tensor a_chosen = run_op(compare, {a, b})[0];
      const Tensor to_a = ops::mul(g[0], a_chosen);
      return Grads{wants(n, 0) ? sum_to(to_a, a.shape()) : Tensor(),
                   wants(n, 1) ? sum_to(ops::sub(g[0], to_a), b.shape()) : Tensor()};
    };
  };
  binary("maximum", chosen("greater_equal"));
  binary("minimum", chosen("less_equal"));

  // pow(a, b) = a^b elementwise with broadcasting (Keras' ops.power): da = b·a^(b−1)·dy;
  // db = a^b·log(a)·dy where a > 0, else 0 (TensorFlow's rule, which keeps log's NaN out).
  binary("pow", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    Tensor da, db;
    if (wants(n, 0))
      da = sum_to(ops::mul(g[0], ops::mul(b, ops::pow(a, ops::scale(b, 1.0, -1.0)))), a.shape());
    if (wants(n, 1)) {
      const Tensor zero = ops::full({}, 0.0f);
      const Tensor log_a = ops::where(ops::greater(a, zero), ops::log(ops::maximum(a, zero)), zero);
      db = sum_to(ops::mul(g[0], ops::mul(n.outputs[0], log_a)), b.shape());
    }
    return Grads{da, db};
  });
}

}  // namespace lamina
