#include "keras_optimizer.hpp"

#include <cmath>

namespace lamina::optimizers {

Adam::Adam(const Config& config)
    : KerasOptimizer(config, "Adam", "adam", 0.001, {"beta_1", "beta_2", "epsilon", "amsgrad"}) {
  // beta < 1 keeps the bias corrections 1 - beta^t away from zero.
  beta_1_ = read_fraction(config, "beta_1", 0.9, 0.0, 1.0, true);
  beta_2_ = read_fraction(config, "beta_2", 0.999, 0.0, 1.0, true);
  epsilon_ = read_fraction(config, "epsilon", 1e-7, 0.0, 1.0, false);
  amsgrad_ = config.get_bool("amsgrad", false);
}

std::string Adam::get_config() const {
  json::object o = base_config();
  o["beta_1"] = beta_1_;
  o["beta_2"] = beta_2_;
  o["epsilon"] = epsilon_;
  o["amsgrad"] = amsgrad_;
  return sdk::to_json(o);
}

// Keras 3's slot names, so optimizer state maps one to one onto its files.
std::vector<std::string> Adam::slot_names() const {
  if (amsgrad_) return {"momentum", "velocity", "velocity_hat"};
  return {"momentum", "velocity"};
}

void Adam::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                 int64_t iteration) {
  expect_slots(slots, amsgrad_ ? 3 : 2);
  double t = double(iteration);
  // Bias correction folded into the step size, as Keras does, instead of correcting m and v.
  double alpha =
      learning_rate_at(iteration) * std::sqrt(1.0 - std::pow(beta_2_, t)) / (1.0 - std::pow(beta_1_, t));
  // m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; amsgrad: v_hat = max(v_hat, v) divides instead of v;
  // p -= alpha * m / (sqrt(v) + eps) — one adam_update op.
  sdk::Attrs attrs;
  attrs.set("alpha", alpha).set("beta_1", beta_1_).set("beta_2", beta_2_).set("epsilon", epsilon_);
  sdk::ops::update("adam_update", parameter, prepare(parameter, gradient, iteration), slots, attrs);
}

}  // namespace lamina::optimizers
