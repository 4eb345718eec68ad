#include "core_layers.hpp"

namespace lamina::layers {

InputLayer::InputLayer(const std::string& config_json) {
  Config config(config_json, "InputLayer");
  // Sparse and ragged inputs have no representation in lamina's dense tensors.
  if (config.get_bool("sparse", false))
    config.fail("sparse inputs are not supported; lamina tensors are dense, so use \"sparse\": false");
  if (config.get_bool("ragged", false))
    config.fail("ragged inputs are not supported; lamina tensors are dense, so use \"ragged\": false");
}

// "sparse" is the one key every Keras version's InputLayer accepts beyond the shape, name and dtype
// the core writes.
std::string InputLayer::get_config() const {
  return sdk::to_json({{"sparse", false}});
}

Shape InputLayer::build(sdk::LayerBuilder&, const Shape& input_shape) {
  return input_shape;
}

sdk::Tensor InputLayer::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                             const sdk::Tensor& input) {
  return input;
}

}  // namespace lamina::layers
