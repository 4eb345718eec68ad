#include "core_layers.hpp"

namespace lamina::layers {

Activation::Activation(const std::string& config_json) {
  Config config(config_json, "Activation");
  activation_ = read_activation(config, true);
}

std::string Activation::get_config() const {
  return sdk::to_json({{"activation", activation_}});
}

Shape Activation::build(sdk::LayerBuilder&, const Shape& input_shape) {
  return input_shape;
}

sdk::Tensor Activation::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                             const sdk::Tensor& input) {
  return sdk::apply_activation(activation_, input);
}

}  // namespace lamina::layers
