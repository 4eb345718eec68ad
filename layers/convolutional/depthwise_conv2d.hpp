// Keras DepthwiseConv2D and SeparableConv2D over NHWC inputs: each input channel convolved on its
// own with depth_multiplier kernels (a grouped conv2d with one group per channel); SeparableConv2D
// follows that with a 1x1 convolution mixing the channels.
#pragma once

#include "conv_common.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

// Weights: depthwise_kernel (kh, kw, in, depth_multiplier), then bias (in·depth_multiplier).
class DepthwiseConv2D final : public sdk::Layer {
 public:
  explicit DepthwiseConv2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  DepthwiseKeys keys_;
  std::string activation_;
  bool use_bias_ = true;
  json::value depthwise_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

// Weights: depthwise_kernel (kh, kw, in, depth_multiplier), pointwise_kernel (1, 1,
// in·depth_multiplier, filters), then bias (filters).
class SeparableConv2D final : public sdk::Layer {
 public:
  explicit SeparableConv2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  int64_t filters_ = 0;
  DepthwiseKeys keys_;
  std::string activation_;
  bool use_bias_ = true;
  json::value depthwise_initializer_;
  json::value pointwise_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

}  // namespace lamina::layers
