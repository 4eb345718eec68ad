#include "keras_optimizer.hpp"

namespace lamina::optimizers {

SGD::SGD(const Config& config) : KerasOptimizer(config, "SGD", "sgd", 0.01) {
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

void SGD::apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                int64_t iteration) {
  namespace ops = sdk::ops;
  double lr = learning_rate_at(iteration);
  if (momentum_ == 0.0) {
    expect_slots(slots, 0);
    ops::assign(parameter, ops::add(parameter, ops::scale(gradient, -lr)));
    return;
  }
  expect_slots(slots, 1);
  // v = momentum * v - lr * g
  Tensor velocity = ops::add(ops::scale(slots[0], momentum_), ops::scale(gradient, -lr));
  // nesterov: p += momentum * v - lr * g; otherwise p += v
  Tensor step = nesterov_ ? ops::add(ops::scale(velocity, momentum_), ops::scale(gradient, -lr)) : velocity;
  Tensor updated = ops::add(parameter, step);
  ops::assign(slots[0], velocity);
  ops::assign(parameter, updated);
}

}  // namespace lamina::optimizers
