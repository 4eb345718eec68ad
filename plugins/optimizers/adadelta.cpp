#include "keras_optimizer.hpp"

namespace lamina::optimizers {

// Default learning rate 1.0 is Keras 2's (and the original paper's: Adadelta needs no rate); the
// seed models were written for it. Keras 3 changed the default to 0.001, which a Keras 3 config
// states explicitly, so both read correctly.
Adadelta::Adadelta(const Config& config)
    : KerasOptimizer(config, "Adadelta", "adadelta", 1.0, {"rho", "epsilon"}) {
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

// a = rho * a + (1 - rho) * g^2; delta = g * sqrt(d + eps) / sqrt(a + eps) with the new a and the
// old d; d = rho * d + (1 - rho) * delta^2; p -= lr * delta — one adadelta_update op.
void Adadelta::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                     int64_t iteration) {
  expect_slots(slots, 2);
  sdk::Attrs attrs;
  attrs.set("lr", learning_rate_at(iteration)).set("rho", rho_).set("epsilon", epsilon_);
  sdk::ops::update("adadelta_update", parameter, prepare(parameter, gradient, iteration), slots, attrs);
}

}  // namespace lamina::optimizers
