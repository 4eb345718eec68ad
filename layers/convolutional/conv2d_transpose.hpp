// Keras Conv2DTranspose over NHWC inputs, with kernels (KH, KW, filters, in_channels) as Keras
// stores them.
#pragma once

#include "../common/keras_layer.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lamina::layers {

class Conv2DTranspose final : public sdk::Layer {
 public:
  explicit Conv2DTranspose(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  // The output's height and width for an input of (height, width), and the pads of the conv2d
  // that maps the output back onto the input (the op's `pads`).
  struct Geometry {
    Shape output_size;
    Shape pads;
  };
  Geometry geometry(int64_t height, int64_t width) const;

  std::string label_;
  int64_t filters_ = 0;
  std::array<int64_t, 2> kernel_size_{};
  std::array<int64_t, 2> strides_{1, 1};
  std::string padding_;
  std::optional<std::array<int64_t, 2>> output_padding_;
  std::string activation_;
  bool use_bias_ = true;
  json::value kernel_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

}  // namespace lamina::layers
