#include "keras_optimizer.hpp"

namespace lamina::optimizers {

// Default learning rate 1.0 is Keras 2's (and the original paper's: Adadelta needs no rate); the
// seed models were written for it. Keras 3 changed the default to 0.001, which a Keras 3 config
// states explicitly, so both read correctly.
Adadelta::Adadelta(const Config& config) : KerasOptimizer(config, "Adadelta", "adadelta", 1.0) {
  rho_ = read_fraction(config, "rho", 0.95, 0.0, 1.0, false);
  // Keras 2 writes epsilon null for "the backend's epsilon", which is 1e-7.
  epsilon_ = read_fraction(config, "epsilon", 1e-7, 0.0, 1.0, false);
}

std::string Adadelta::get_config() const {
  json::object o = base_config();
  o["rho"] = rho_;
  o["epsilon"] = epsilon_;
  return sdk::to_json(o);
}

std::vector<std::string> Adadelta::slot_names() const {
  return {"accumulated_grad", "accumulated_delta"};
}

void Adadelta::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                     int64_t iteration) {
  namespace ops = sdk::ops;
  expect_slots(slots, 2);
  double lr = learning_rate_at(iteration);
  const Tensor& grad_acc = slots[0];
  const Tensor& delta_acc = slots[1];
  // a = rho * a + (1 - rho) * g^2
  Tensor a = ops::add(ops::scale(grad_acc, rho_), ops::scale(ops::square(gradient), 1.0 - rho_));
  // delta = g * sqrt(d + eps) / sqrt(a + eps), with the new a and the old d
  Tensor delta = ops::div(ops::mul(gradient, ops::sqrt(ops::scale(delta_acc, 1.0, epsilon_))),
                          ops::sqrt(ops::scale(a, 1.0, epsilon_)));
  // d = rho * d + (1 - rho) * delta^2
  Tensor d = ops::add(ops::scale(delta_acc, rho_), ops::scale(ops::square(delta), 1.0 - rho_));
  Tensor updated = ops::add(parameter, ops::scale(delta, -lr));
  ops::assign(grad_acc, a);
  ops::assign(delta_acc, d);
  ops::assign(parameter, updated);
}

}  // namespace lamina::optimizers
