// Keras Conv1D over (steps, channels) inputs with (kernel_size, in, filters) kernels, run as the
// conv2d op on a (batch, 1, steps, channels) view.
#pragma once

#include "../common/keras_layer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

class Conv1D final : public sdk::Layer {
 public:
  explicit Conv1D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  // The output length and the padding before and after the steps, for `steps` input steps.
  WindowAxis window(int64_t steps) const;

  std::string label_;
  int64_t filters_ = 0;
  int64_t kernel_size_ = 1;
  int64_t strides_ = 1;
  std::string padding_;
  std::string activation_;
  bool use_bias_ = true;
  json::value kernel_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

}  // namespace lamina::layers
