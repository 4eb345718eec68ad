#include "normalization_layers.hpp"

namespace lamina::layers {

LayerNormalization::LayerNormalization(const std::string& config_json) {
  Config config(config_json, "LayerNormalization");
  label_ = layer_label("LayerNormalization", config);
  axis_ = read_axis(config, json::value(-1));
  epsilon_ = read_epsilon(config);
  center_ = config.get_bool("center", true);
  scale_ = config.get_bool("scale", true);
  beta_initializer_ = read_initializer(config, "beta_initializer", "zeros");
  gamma_initializer_ = read_initializer(config, "gamma_initializer", "ones");
  regularizers_ = keep_regularizers(config, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});
  // Keras 3 only; its meaning has changed between Keras releases, so lamina does not guess one.
  if (config.get_bool("rms_scaling", false))
    config.fail(
        "config key 'rms_scaling' is true, which lamina does not support yet; set \"rms_scaling\": false");
  if (const json::value* v = config.object().if_contains("rms_scaling")) passed_on_["rms_scaling"] = *v;
}

std::string LayerNormalization::get_config() const {
  json::object o{{"axis", axis_.raw},
                 {"epsilon", epsilon_},
                 {"center", center_},
                 {"scale", scale_},
                 {"beta_initializer", beta_initializer_},
                 {"gamma_initializer", gamma_initializer_}};
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  for (const auto& kv : passed_on_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape LayerNormalization::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  positions_ = resolve_axes(label_, axis_.axes, input_shape);
  Shape weight;  // the sizes along `axis`, in the order it lists them (as Keras)
  for (int64_t p : positions_) weight.push_back(input_shape[size_t(p - 1)]);
  if (scale_) builder.add_weight("gamma", weight, json::serialize(gamma_initializer_));
  if (center_) builder.add_weight("beta", weight, json::serialize(beta_initializer_));
  return input_shape;
}

// x: (batch, ...); statistics per sample over the axes of `axis`. gamma and beta are reshaped to x's
// rank with size 1 on the other axes (Keras reshapes them the same way).
sdk::Tensor LayerNormalization::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                                     const sdk::Tensor& x) {
  namespace ops = sdk::ops;
  const Shape shape = x.shape();
  Shape broadcast(shape.size(), 1);
  for (int64_t p : positions_) broadcast[size_t(p)] = shape[size_t(p)];
  const sdk::Tensor mean = mean_over(x, positions_);
  const sdk::Tensor centered = ops::sub(x, mean);
  const sdk::Tensor variance = mean_over(ops::square(centered), positions_);  // biased
  sdk::Tensor y = ops::div(centered, ops::sqrt(ops::scale(variance, 1.0, epsilon_)));
  size_t next = 0;
  if (scale_) y = ops::mul(y, ops::reshape(weights.at(next++), broadcast));
  if (center_) y = ops::add(y, ops::reshape(weights.at(next++), broadcast));
  return y;
}

}  // namespace lamina::layers
