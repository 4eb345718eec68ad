#include "core_layers.hpp"

namespace lamina::layers {

Dense::Dense(const std::string& config_json) {
  Config config(config_json, "Dense");
  label_ = layer_label("Dense", config);
  if (!config.has("units")) config.fail("config key 'units' is missing; give the number of outputs, e.g. 10");
  units_ = config.require_int("units");
  if (units_ < 1) config.fail("config key 'units' must be a positive integer, got " + std::to_string(units_));
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  kernel_initializer_ = read_initializer(config, "kernel_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_kernel_regularizers(config);
}

std::string Dense::get_config() const {
  json::object o{{"units", units_},
                 {"activation", activation_},
                 {"use_bias", use_bias_},
                 {"kernel_initializer", kernel_initializer_},
                 {"bias_initializer", bias_initializer_}};
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

// Like Keras, a Dense on a rank > 1 sample acts on the last axis and keeps the others.
Shape Dense::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  if (input_shape.empty())
    throw sdk::Error(label_ +
                     ": needs inputs with at least one axis (features) per sample, got a scalar; "
                     "add a Reshape layer with target_shape [1] before it");
  int64_t in = input_shape.back();
  if (in < 1)
    throw sdk::Error(label_ + ": the last input axis must be known and positive, got input shape " +
                     shape_text(input_shape));
  builder.add_weight("kernel", {in, units_}, json::serialize(kernel_initializer_));
  if (use_bias_) builder.add_weight("bias", {units_}, json::serialize(bias_initializer_));
  Shape out(input_shape.begin(), input_shape.end() - 1);
  out.push_back(units_);
  return out;
}

sdk::Tensor Dense::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                        const sdk::Tensor& input) {
  if (weights.size() != (use_bias_ ? 2u : 1u))
    throw sdk::Error(label_ + ": expected " + std::to_string(use_bias_ ? 2 : 1) + " weights, got " +
                     std::to_string(weights.size()));
  Shape shape = input.shape();
  if (shape.size() < 2) throw sdk::Error(label_ + ": input " + shape_text(shape) + " lacks a feature axis");
  // matmul is 2-D only: fold every leading axis into the rows and unfold afterwards.
  bool folded = shape.size() > 2;
  sdk::Tensor x = folded ? sdk::ops::reshape(input, {-1, shape.back()}) : input;
  // With a bias, one fused op adds it and applies the activation while the product is written
  // (softmax, which needs whole rows, stays a separate op).
  bool fused = use_bias_ && sdk::is_fusable_activation(activation_);
  sdk::Tensor y;
  if (fused)
    y = sdk::ops::matmul_bias(x, weights[0], weights[1], activation_);
  else {
    y = sdk::ops::matmul(x, weights[0]);
    if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[1], {1, units_}));
  }
  if (folded) {
    shape.back() = units_;
    y = sdk::ops::reshape(y, shape);
  }
  return fused ? y : sdk::apply_activation(activation_, y);
}

}  // namespace lamina::layers
