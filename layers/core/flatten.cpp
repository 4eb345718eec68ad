#include "core_layers.hpp"

namespace lamina::layers {

Flatten::Flatten(const std::string& config_json) {
  Config config(config_json, "Flatten");
  label_ = layer_label("Flatten", config);
  data_format_ = config.get_choice("data_format", "channels_last", {"channels_last", "channels_first"});
}

std::string Flatten::get_config() const {
  return sdk::to_json({{"data_format", data_format_}});
}

Shape Flatten::build(sdk::LayerBuilder&, const Shape& input_shape) {
  // Keras moves a channels_first input's channel axis last before flattening. lamina has no
  // transpose op, and flattening in plain order would silently scramble the features the next
  // Dense was trained on; with at most one axis the two orders agree.
  if (data_format_ == "channels_first" && input_shape.size() > 1)
    throw sdk::Error(label_ + ": data_format \"channels_first\" on input " + shape_text(input_shape) +
                     " is not supported yet (Keras would move the first axis last before flattening); "
                     "lamina runs channels_last, so use data_format \"channels_last\"");
  int64_t n = 1;
  for (int64_t d : input_shape) n *= d;
  return {n};
}

sdk::Tensor Flatten::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                          const sdk::Tensor& input) {
  Shape shape = input.shape();
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return sdk::ops::reshape(input, {shape.empty() ? 1 : shape[0], n});
}

}  // namespace lamina::layers
