#include "keras_optimizer.hpp"

namespace lamina::optimizers {

RMSprop::RMSprop(const Config& config)
    : KerasOptimizer(config, "RMSprop", "rmsprop", 0.001, {"rho", "momentum", "epsilon", "centered"}) {
  rho_ = read_fraction(config, "rho", 0.9, 0.0, 1.0, false);
  momentum_ = read_fraction(config, "momentum", 0.0, 0.0, 1.0, false);
  epsilon_ = read_fraction(config, "epsilon", 1e-7, 0.0, 1.0, false);
  if (config.get_bool("centered", false))
    config.fail("centered RMSprop is not supported yet; use \"centered\": false");
}

std::string RMSprop::get_config() const {
  json::object o = base_config();
  o["rho"] = rho_;
  o["momentum"] = momentum_;
  o["epsilon"] = epsilon_;
  o["centered"] = false;
  return sdk::to_json(o);
}

std::vector<std::string> RMSprop::slot_names() const {
  if (momentum_ > 0.0) return {"velocity", "momentum"};
  return {"velocity"};
}

// Keras 2's update, epsilon outside the square root: p -= lr * g / (sqrt(v) + eps). tf.keras 2.x and
// Keras 3 divide by sqrt(v + eps) instead; the two differ only while v is near eps. Momentum, which
// Keras 2 lacks, follows Keras 3: m = momentum * m + step; p -= m.
void RMSprop::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                    int64_t iteration) {
  expect_slots(slots, momentum_ > 0.0 ? 2 : 1);
  // v = rho v + (1 - rho) g^2; step = lr g / (sqrt(v) + eps); momentum: m = momentum m + step, step = m;
  // p -= step — one rmsprop_update op.
  sdk::Attrs attrs;
  attrs.set("lr", learning_rate_at(iteration)).set("rho", rho_).set("momentum", momentum_).set("epsilon", epsilon_);
  sdk::ops::update("rmsprop_update", parameter, prepare(parameter, gradient, iteration), slots, attrs);
}

}  // namespace lamina::optimizers
