#include "core_layers.hpp"

#include <cmath>

namespace lamina::layers {

Dropout::Dropout(const std::string& config_json, const char* class_name, int spatial_rank)
    : spatial_rank_(spatial_rank) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  if (!config.has("rate"))
    config.fail("config key 'rate' is missing; give the fraction of inputs to drop, e.g. 0.5");
  rate_ = config.get_float("rate", 0.0);
  // rate 1 would scale the kept (no) units by 1/0.
  if (!(rate_ >= 0.0 && rate_ < 1.0))
    config.fail("config key 'rate' must be in [0, 1), got " + value_text(config.object().at("rate")));
  if (spatial_rank_ > 0) {
    require_channels_last(config);
  } else if (config.has("noise_shape")) {
    noise_shape_ = config.object().at("noise_shape");
    if (!noise_shape_.is_array())
      config.fail(
          "config key 'noise_shape' must be a list with one entry per input axis (null for the "
          "input's size, 1 to share the mask along that axis), got " +
          value_text(noise_shape_));
    for (const json::value& d : noise_shape_.as_array())
      if (!d.is_null() && !((d.is_int64() || d.is_uint64()) && d.to_number<int64_t>() >= 1))
        config.fail("config key 'noise_shape' has the entry " + value_text(d) +
                    "; each entry is null or a positive size");
  }
  seed_ = config.has("seed") ? json::value(config.get_int("seed", 0)) : json::value(nullptr);
}

std::string Dropout::get_config() const {
  if (spatial_rank_ > 0)
    return sdk::to_json({{"rate", rate_}, {"seed", seed_}, {"data_format", "channels_last"}});
  return sdk::to_json({{"rate", rate_}, {"noise_shape", noise_shape_}, {"seed", seed_}});
}

Shape Dropout::build(sdk::LayerBuilder&, const Shape& input_shape) {
  if (spatial_rank_ > 0 && input_shape.size() != size_t(spatial_rank_) + 1)
    throw sdk::Error(label_ + ": expects inputs of rank " + std::to_string(spatial_rank_ + 2) + " (batch, " +
                     (spatial_rank_ == 1   ? "steps"
                      : spatial_rank_ == 2 ? "rows, cols"
                                           : "dim1, dim2, dim3") +
                     ", channels), got per-sample shape " + shape_text(input_shape));
  if (noise_shape_.is_array()) {
    const json::array& noise = noise_shape_.as_array();
    if (noise.size() != input_shape.size() + 1)
      throw sdk::Error(label_ + ": noise_shape has " + std::to_string(noise.size()) +
                       " entries, but the input has " + std::to_string(input_shape.size() + 1) +
                       " axes (the batch included)");
    for (size_t a = 1; a < noise.size(); ++a)
      if (!noise[a].is_null() && noise[a].to_number<int64_t>() != 1 &&
          noise[a].to_number<int64_t>() != input_shape[a - 1])
        throw sdk::Error(label_ + ": noise_shape entry " + std::to_string(a) + " is " + value_text(noise[a]) +
                         "; it must be 1, null or the input's size " + std::to_string(input_shape[a - 1]));
  }
  return input_shape;
}

// The core supplies a fresh seed per layer and step, so the config's seed only travels with the
// config: masks are reproducible from the core's seed instead.
sdk::Tensor Dropout::mask(const sdk::CallContext& context, const sdk::Tensor& input) const {
  if (spatial_rank_ == 0 && !noise_shape_.is_array())
    return sdk::ops::dropout_mask(input, rate_, context.seed);
  // A mask of the noise shape, broadcast over the axes where it is 1.
  Shape shape = input.shape();
  if (spatial_rank_ > 0) {
    for (size_t a = 1; a + 1 < shape.size(); ++a) shape[a] = 1;
  } else {
    const json::array& noise = noise_shape_.as_array();
    for (size_t a = 0; a < shape.size(); ++a)
      if (!noise[a].is_null()) shape[a] = noise[a].to_number<int64_t>();
  }
  return sdk::ops::dropout_mask(shape, rate_, context.seed);
}

sdk::Tensor Dropout::call(const sdk::CallContext& context, const std::vector<sdk::Tensor>&,
                          const sdk::Tensor& input) {
  if (!context.training || rate_ == 0.0) return input;
  return sdk::ops::mul(input, mask(context, input));
}

// Keras: kept = (u >= rate); x = inputs·kept + α'·(1 − kept); y = a·x + b, with α' = −λα (SELU's
// saturation), a = ((1 − rate)(1 + rate·α'²))^−½ and b = −a·α'·rate. With the mask m = kept/(1 − rate):
// y = a(1 − rate)·m·(inputs − α') + a·α' + b.
sdk::Tensor AlphaDropout::call(const sdk::CallContext& context, const std::vector<sdk::Tensor>&,
                               const sdk::Tensor& input) {
  const double r = rate();
  if (!context.training || r == 0.0) return input;
  constexpr double kAlpha = 1.6732632423543772848170429916717, kScale = 1.0507009873554804934193349852946;
  const double alpha_p = -kAlpha * kScale;
  const double a = 1.0 / std::sqrt((1.0 - r) * (1.0 + r * alpha_p * alpha_p)), b = -a * alpha_p * r;
  const sdk::Tensor kept = sdk::ops::scale(mask(context, input), a * (1.0 - r));
  return sdk::ops::scale(sdk::ops::mul(kept, sdk::ops::scale(input, 1.0, -alpha_p)), 1.0, a * alpha_p + b);
}

GaussianNoise::GaussianNoise(const std::string& config_json, const char* class_name)
    : multiplicative_(std::string(class_name) == "GaussianDropout") {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  const char* key = multiplicative_ ? "rate" : "stddev";
  if (!config.has(key))
    config.fail(
        std::string("config key '") + key + "' is missing; give " +
        (multiplicative_ ? "the drop probability, e.g. 0.1" : "the noise's standard deviation, e.g. 0.1"));
  amount_ = config.get_float(key, 0.0);
  // GaussianDropout's noise has variance rate/(1-rate): rate 1 has none.
  if (multiplicative_ ? !(amount_ >= 0.0 && amount_ < 1.0) : !(amount_ >= 0.0))
    config.fail(std::string("config key '") + key + "' must be " + (multiplicative_ ? "in [0, 1)" : ">= 0") +
                ", got " + value_text(config.object().at(key)));
  seed_ = config.has("seed") ? json::value(config.get_int("seed", 0)) : json::value(nullptr);
}

std::string GaussianNoise::get_config() const {
  return sdk::to_json({{multiplicative_ ? "rate" : "stddev", amount_}, {"seed", seed_}});
}

Shape GaussianNoise::build(sdk::LayerBuilder&, const Shape& input_shape) {
  return input_shape;
}

sdk::Tensor GaussianNoise::call(const sdk::CallContext& context, const std::vector<sdk::Tensor>&,
                                const sdk::Tensor& input) {
  if (!context.training || amount_ == 0.0) return input;
  if (!multiplicative_)
    return sdk::ops::add(input, sdk::ops::random_normal(input, 0.0, amount_, context.seed));
  const double stddev = std::sqrt(amount_ / (1.0 - amount_));
  return sdk::ops::mul(input, sdk::ops::random_normal(input, 1.0, stddev, context.seed));
}

}  // namespace lamina::layers
