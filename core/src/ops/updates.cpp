// Optimizer updates: sgd, adadelta, adam, rmsprop, written in place.
#include "op_set.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <string>
#include <vector>

namespace lamina {

void define_update_ops(OpSet& set) {
  // Optimizer updates, one op per parameter instead of a dozen element-wise passes. The fallbacks
  // are the same rules written with basic ops, as the optimizers were before these ops existed.
  auto update = [&](const std::string& name, std::vector<std::string> attributes, size_t min_inputs,
                    size_t max_inputs, FallbackFn fallback) {
    OpDef& d = set.def(name, std::move(attributes));
    d.in_place_update = true;
    d.update_min_inputs = min_inputs;
    d.update_max_inputs = max_inputs;
    d.infer = [name, min_inputs, max_inputs](const ShapeList& in, const Attributes&) {
      return update_shapes(name, in, min_inputs, max_inputs);
    };
    d.fallback = std::move(fallback);
  };
  update("sgd_update", {"lr", "momentum", "nesterov"}, 2, 3, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 0.01), momentum = a.get_float("momentum", 0.0);
    const Tensor &p = in[0], &g = in[1];
    if (in.size() == 2) {
      assign(p, ops::add(p, ops::scale(g, -lr)));
      return in;
    }
    Tensor v = ops::add(ops::scale(in[2], momentum), ops::scale(g, -lr));
    Tensor step = a.get_int("nesterov", 0) ? ops::add(ops::scale(v, momentum), ops::scale(g, -lr)) : v;
    Tensor updated = ops::add(p, step);
    assign(in[2], v);
    assign(p, updated);
    return in;
  });
  update("adadelta_update", {"lr", "rho", "epsilon"}, 4, 4, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 1.0), rho = a.get_float("rho", 0.95), eps = a.get_float("epsilon", 1e-7);
    const Tensor &p = in[0], &g = in[1], &acc = in[2], &delta_acc = in[3];
    Tensor acc2 = ops::add(ops::scale(acc, rho), ops::scale(ops::square(g), 1.0 - rho));
    Tensor delta = ops::div(ops::mul(g, ops::sqrt(ops::scale(delta_acc, 1.0, eps))),
                            ops::sqrt(ops::scale(acc2, 1.0, eps)));
    Tensor delta_acc2 = ops::add(ops::scale(delta_acc, rho), ops::scale(ops::square(delta), 1.0 - rho));
    Tensor updated = ops::add(p, ops::scale(delta, -lr));
    assign(acc, acc2);
    assign(delta_acc, delta_acc2);
    assign(p, updated);
    return in;
  });
  update("adam_update", {"alpha", "beta_1", "beta_2", "epsilon"}, 4, 5, [](const std::vector<Tensor>& in, const Attributes& a) {
    double alpha = a.get_float("alpha", 0.001), b1 = a.get_float("beta_1", 0.9),
           b2 = a.get_float("beta_2", 0.999), eps = a.get_float("epsilon", 1e-7);
    const Tensor &p = in[0], &g = in[1];
    Tensor m = ops::add(ops::scale(in[2], b1), ops::scale(g, 1.0 - b1));
    Tensor v = ops::add(ops::scale(in[3], b2), ops::scale(ops::square(g), 1.0 - b2));
    Tensor denominator_source = v, v_hat;
    if (in.size() == 5) {
      v_hat = ops::add(in[4], ops::relu(ops::sub(v, in[4])));
      denominator_source = v_hat;
    }
    Tensor updated =
        ops::sub(p, ops::div(ops::scale(m, alpha), ops::scale(ops::sqrt(denominator_source), 1.0, eps)));
    assign(in[2], m);
    assign(in[3], v);
    if (in.size() == 5) assign(in[4], v_hat);
    assign(p, updated);
    return in;
  });
  update("rmsprop_update", {"lr", "rho", "momentum", "epsilon"}, 3, 4, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 0.001), rho = a.get_float("rho", 0.9), eps = a.get_float("epsilon", 1e-7),
           momentum = a.get_float("momentum", 0.0);
    const Tensor &p = in[0], &g = in[1];
    Tensor v = ops::add(ops::scale(in[2], rho), ops::scale(ops::square(g), 1.0 - rho));
    Tensor step = ops::div(ops::scale(g, lr), ops::scale(ops::sqrt(v), 1.0, eps));
    Tensor m;
    if (in.size() == 4) {
      m = ops::add(ops::scale(in[3], momentum), step);
      step = m;
    }
    Tensor updated = ops::sub(p, step);
    assign(in[2], v);
    if (in.size() == 4) assign(in[3], m);
    assign(p, updated);
    return in;
  });
}

}  // namespace lamina
