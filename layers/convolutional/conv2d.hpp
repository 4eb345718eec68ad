// Keras Conv2D over NHWC inputs with HWIO kernels, with dilation_rate and groups.
#pragma once

#include "../common/keras_layer.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

class Conv2D final : public sdk::Layer {
 public:
  explicit Conv2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  int64_t filters_ = 0;
  std::array<int64_t, 2> kernel_size_{};
  std::array<int64_t, 2> strides_{1, 1};
  std::array<int64_t, 2> dilation_{1, 1};
  int64_t groups_ = 1;
  std::string padding_;
  std::string activation_;
  bool use_bias_ = true;
  json::value kernel_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

}  // namespace lamina::layers
