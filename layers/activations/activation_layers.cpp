#include "activation_layers.hpp"

namespace lamina::layers {

namespace {

// relu(x) − slope·relu(−x): x where x ≥ 0, slope·x below.
sdk::Tensor leaky(const sdk::Tensor& x, const sdk::Tensor& slope) {
  return sdk::ops::sub(sdk::ops::relu(x), sdk::ops::mul(slope, sdk::ops::relu(sdk::ops::neg(x))));
}
sdk::Tensor leaky(const sdk::Tensor& x, double slope) {
  sdk::Tensor positive = sdk::ops::relu(x);
  if (slope == 0.0) return positive;
  return sdk::ops::sub(positive, sdk::ops::scale(sdk::ops::relu(sdk::ops::neg(x)), slope));
}

double non_negative(const Config& config, const char* key, double fallback) {
  double v = config.get_float(key, fallback);
  if (!(v >= 0.0))
    config.fail(std::string("config key '") + key + "' must be >= 0, got " + std::to_string(v));
  return v;
}

}  // namespace

ReLU::ReLU(const std::string& config_json) {
  Config config(config_json, "ReLU");
  label_ = layer_label("ReLU", config);
  if (config.has("max_value") && !config.object().at("max_value").is_null())
    max_value_ = non_negative(config, "max_value", 0.0);
  negative_slope_ = non_negative(config, "negative_slope", 0.0);
  if (config.get_float("threshold", 0.0) != 0.0)
    config.fail("config key 'threshold' other than 0 is not supported yet");
}

std::string ReLU::get_config() const {
  json::object o{{"negative_slope", negative_slope_}, {"threshold", 0.0}};
  o["max_value"] = max_value_ ? json::value(*max_value_) : json::value(nullptr);
  return sdk::to_json(o);
}

sdk::Tensor ReLU::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  if (!max_value_) return leaky(x, negative_slope_);
  // below 0: slope·x; from 0 up: min(x, max_value)
  sdk::Tensor capped = sdk::ops::clip(sdk::ops::relu(x), 0.0, *max_value_);
  if (negative_slope_ == 0.0) return capped;
  return sdk::ops::sub(capped, sdk::ops::scale(sdk::ops::relu(sdk::ops::neg(x)), negative_slope_));
}

LeakyReLU::LeakyReLU(const std::string& config_json) {
  Config config(config_json, "LeakyReLU");
  label_ = layer_label("LeakyReLU", config);
  if (config.has("alpha") && !config.has("negative_slope")) key_ = "alpha";  // tf_keras
  negative_slope_ = non_negative(config, key_, 0.3);
}

std::string LeakyReLU::get_config() const {
  return sdk::to_json({{key_, negative_slope_}});
}

sdk::Tensor LeakyReLU::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  return leaky(x, negative_slope_);
}

ELU::ELU(const std::string& config_json) {
  Config config(config_json, "ELU");
  label_ = layer_label("ELU", config);
  alpha_ = config.get_float("alpha", 1.0);
}

std::string ELU::get_config() const {
  return sdk::to_json({{"alpha", alpha_}});
}

sdk::Tensor ELU::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  return sdk::elu(x, alpha_);
}

Softmax::Softmax(const std::string& config_json) {
  Config config(config_json, "Softmax");
  label_ = layer_label("Softmax", config);
  const json::value* axis = config.has("axis") ? &config.object().at("axis") : nullptr;
  if (axis && axis->is_array()) {  // Keras accepts a list of axes; lamina one
    if (axis->as_array().size() != 1)
      config.fail("config key 'axis' must name one axis, got " + value_text(*axis));
    axis_ = axis->as_array()[0].to_number<int64_t>();
  } else {
    axis_ = config.get_int("axis", -1);
  }
  if (axis_ == 0) config.fail("config key 'axis' cannot be 0, the batch axis");
}

std::string Softmax::get_config() const {
  return sdk::to_json({{"axis", axis_}});
}

// The op works over the last axis: another axis is swapped to the end and back.
sdk::Tensor Softmax::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  const int64_t rank = int64_t(x.shape().size());
  const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  if (axis <= 0 || axis >= rank)
    throw sdk::Error(label_ + ": axis " + std::to_string(axis_) + " is out of range for input " +
                     shape_text(x.shape()));
  if (axis == rank - 1) return sdk::ops::softmax(x);
  Shape perm;
  for (int64_t k = 0; k < rank; ++k) perm.push_back(k);
  std::swap(perm[size_t(axis)], perm.back());  // its own inverse
  return sdk::ops::transpose(sdk::ops::softmax(sdk::ops::transpose(x, perm)), perm);
}

PReLU::PReLU(const std::string& config_json) {
  Config config(config_json, "PReLU");
  label_ = layer_label("PReLU", config);
  alpha_initializer_ = read_initializer(config, "alpha_initializer", "zeros");
  if (config.has("shared_axes") && !config.object().at("shared_axes").is_null()) {
    const json::value& v = config.object().at("shared_axes");
    if (v.is_array()) {
      for (const json::value& a : v.as_array()) shared_axes_.push_back(a.to_number<int64_t>());
    } else {
      shared_axes_.push_back(v.to_number<int64_t>());
    }
    for (int64_t a : shared_axes_)
      if (a < 1)
        config.fail("config key 'shared_axes' numbers axes from 1 (0 is the batch), got " + value_text(v));
  }
  regularizers_ = keep_regularizers(config, {"alpha_regularizer", "alpha_constraint"});
}

std::string PReLU::get_config() const {
  json::object o{{"alpha_initializer", alpha_initializer_}};
  if (shared_axes_.empty()) {
    o["shared_axes"] = nullptr;
  } else {
    json::array axes;
    for (int64_t a : shared_axes_) axes.push_back(a);
    o["shared_axes"] = axes;
  }
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape PReLU::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  Shape alpha = input_shape;
  for (int64_t a : shared_axes_) {
    if (a > int64_t(alpha.size()))
      throw sdk::Error(label_ + ": shared axis " + std::to_string(a) + " is beyond the input " +
                       shape_text(input_shape));
    alpha[size_t(a - 1)] = 1;
  }
  builder.add_weight("alpha", alpha, json::serialize(alpha_initializer_));
  return input_shape;
}

sdk::Tensor PReLU::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                        const sdk::Tensor& x) {
  return leaky(x, weights.at(0));  // alpha broadcasts over the batch (and the shared axes)
}

}  // namespace lamina::layers
