#include "keras_optimizer.hpp"

namespace lamina::optimizers {

SGD::SGD(const Config& config) : KerasOptimizer(config, "SGD", "sgd", 0.01, {"momentum", "nesterov"}) {
  momentum_ = read_fraction(config, "momentum", 0.0, 0.0, 1.0, false);
  nesterov_ = config.get_bool("nesterov", false);
}

std::string SGD::get_config() const {
  json::object o = base_config();
  o["momentum"] = momentum_;
  o["nesterov"] = nesterov_;
  return sdk::to_json(o);
}

// Like Keras 3, plain SGD keeps no state, so it costs no memory per parameter.
std::vector<std::string> SGD::slot_names() const {
  if (momentum_ > 0.0) return {"momentum"};
  return {};
}

// p -= lr * g; with momentum: v = momentum * v - lr * g, then p += v (nesterov: p += momentum * v - lr * g)
// — one sgd_update op.
void SGD::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                int64_t iteration) {
  expect_slots(slots, momentum_ == 0.0 ? 0 : 1);
  sdk::Attrs attrs;
  attrs.set("lr", learning_rate_at(iteration)).set("momentum", momentum_).set("nesterov", int64_t(nesterov_));
  sdk::ops::update("sgd_update", parameter, prepare(parameter, gradient, iteration), slots, attrs);
}

}  // namespace lamina::optimizers
