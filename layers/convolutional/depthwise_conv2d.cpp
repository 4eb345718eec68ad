#include "depthwise_conv2d.hpp"

namespace lamina::layers {

namespace {

void expect_weights(const std::string& label, const std::vector<sdk::Tensor>& weights, size_t count) {
  if (weights.size() != count)
    throw sdk::Error(label + ": expected " + std::to_string(count) + " weights, got " +
                     std::to_string(weights.size()));
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// DepthwiseConv2D

DepthwiseConv2D::DepthwiseConv2D(const std::string& config_json)
    : keys_(Config(config_json, "DepthwiseConv2D")) {
  Config config(config_json, "DepthwiseConv2D");
  label_ = layer_label("DepthwiseConv2D", config);
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  depthwise_initializer_ = read_initializer(config, "depthwise_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ =
      keep_regularizers(config, {"depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                                 "depthwise_constraint", "bias_constraint"});
}

std::string DepthwiseConv2D::get_config() const {
  json::object o;
  keys_.write(o);
  o["activation"] = activation_;
  o["use_bias"] = use_bias_;
  o["depthwise_initializer"] = depthwise_initializer_;
  o["bias_initializer"] = bias_initializer_;
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape DepthwiseConv2D::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  Window2D win = dilated_window(label_, input_shape, keys_.kernel_size, keys_.dilation, keys_.strides,
                                keys_.padding == "same");
  const int64_t outputs = input_shape[2] * keys_.depth_multiplier;
  builder.add_weight("depthwise_kernel",
                     {keys_.kernel_size[0], keys_.kernel_size[1], input_shape[2], keys_.depth_multiplier},
                     json::serialize(depthwise_initializer_));
  if (use_bias_) builder.add_weight("bias", {outputs}, json::serialize(bias_initializer_));
  return {win.out_h, win.out_w, outputs};
}

sdk::Tensor DepthwiseConv2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                                  const sdk::Tensor& input) {
  expect_weights(label_, weights, use_bias_ ? 2 : 1);
  // With a bias, one fused op adds it and applies the activation (softmax stays a separate op).
  if (use_bias_ && sdk::is_fusable_activation(activation_))
    return keys_.apply(label_, input, weights[0], &weights[1], activation_);
  sdk::Tensor y = keys_.apply(label_, input, weights[0]);
  if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[1], {1, 1, 1, weights[1].shape()[0]}));
  return sdk::apply_activation(activation_, y);
}

// ------------------------------------------------------------------------------------------------
// SeparableConv2D

SeparableConv2D::SeparableConv2D(const std::string& config_json)
    : keys_(Config(config_json, "SeparableConv2D")) {
  Config config(config_json, "SeparableConv2D");
  label_ = layer_label("SeparableConv2D", config);
  filters_ = read_filters(config);
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  depthwise_initializer_ = read_initializer(config, "depthwise_initializer", "glorot_uniform");
  pointwise_initializer_ = read_initializer(config, "pointwise_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_regularizers(
      config, {"depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
               "depthwise_constraint", "pointwise_constraint", "bias_constraint"});
}

std::string SeparableConv2D::get_config() const {
  json::object o;
  o["filters"] = filters_;
  keys_.write(o);
  o["activation"] = activation_;
  o["use_bias"] = use_bias_;
  o["depthwise_initializer"] = depthwise_initializer_;
  o["pointwise_initializer"] = pointwise_initializer_;
  o["bias_initializer"] = bias_initializer_;
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape SeparableConv2D::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  Window2D win = dilated_window(label_, input_shape, keys_.kernel_size, keys_.dilation, keys_.strides,
                                keys_.padding == "same");
  builder.add_weight("depthwise_kernel",
                     {keys_.kernel_size[0], keys_.kernel_size[1], input_shape[2], keys_.depth_multiplier},
                     json::serialize(depthwise_initializer_));
  builder.add_weight("pointwise_kernel", {1, 1, input_shape[2] * keys_.depth_multiplier, filters_},
                     json::serialize(pointwise_initializer_));
  if (use_bias_) builder.add_weight("bias", {filters_}, json::serialize(bias_initializer_));
  return {win.out_h, win.out_w, filters_};
}

sdk::Tensor SeparableConv2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                                  const sdk::Tensor& input) {
  expect_weights(label_, weights, use_bias_ ? 3 : 2);
  // The depthwise step, then a 1x1 convolution (stride 1, no padding) over its channels.
  const sdk::Tensor depthwise = keys_.apply(label_, input, weights[0]);
  if (use_bias_ && sdk::is_fusable_activation(activation_))
    return sdk::ops::conv2d_bias(depthwise, weights[1], weights[2], {}, activation_);
  sdk::Tensor y = sdk::ops::conv2d(depthwise, weights[1]);
  if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[2], {1, 1, 1, filters_}));
  return sdk::apply_activation(activation_, y);
}

}  // namespace lamina::layers
