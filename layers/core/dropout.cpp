#include "core_layers.hpp"

namespace lamina::layers {

Dropout::Dropout(const std::string& config_json) {
  Config config(config_json, "Dropout");
  if (!config.has("rate"))
    config.fail("config key 'rate' is missing; give the fraction of inputs to drop, e.g. 0.5");
  rate_ = config.get_float("rate", 0.0);
  // rate 1 would scale the kept (no) units by 1/0.
  if (!(rate_ >= 0.0 && rate_ < 1.0))
    config.fail("config key 'rate' must be in [0, 1), got " + value_text(config.object().at("rate")));
  if (config.has("noise_shape"))
    config.fail("config key 'noise_shape' is not supported yet; set it to null (one mask per element)");
  seed_ = config.has("seed") ? json::value(config.get_int("seed", 0)) : json::value(nullptr);
}

std::string Dropout::get_config() const {
  return sdk::to_json({{"rate", rate_}, {"noise_shape", nullptr}, {"seed", seed_}});
}

Shape Dropout::build(sdk::LayerBuilder&, const Shape& input_shape) {
  return input_shape;
}

// The core supplies a fresh seed per layer and step, so the config's seed only travels with the
// config: masks are reproducible from the core's seed instead.
sdk::Tensor Dropout::call(const sdk::CallContext& context, const std::vector<sdk::Tensor>&,
                          const sdk::Tensor& input) {
  if (!context.training || rate_ == 0.0) return input;
  return sdk::ops::mul(input, sdk::ops::dropout_mask(input, rate_, context.seed));
}

}  // namespace lamina::layers
