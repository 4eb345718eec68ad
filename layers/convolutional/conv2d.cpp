#include "conv2d.hpp"

#include "conv_common.hpp"

namespace lamina::layers {

Conv2D::Conv2D(const std::string& config_json) {
  Config config(config_json, "Conv2D");
  label_ = layer_label("Conv2D", config);
  filters_ = read_filters(config);
  if (!config.has("kernel_size"))
    config.fail("config key 'kernel_size' is missing; give the window size, e.g. 3 or [3, 3]");
  kernel_size_ = config.get_pair("kernel_size", std::nullopt);
  strides_ = config.get_pair("strides", std::array<int64_t, 2>{1, 1});
  padding_ = config.get_choice("padding", "valid", {"valid", "same"});
  require_channels_last(config);
  dilation_ = read_dilation(config, strides_);
  groups_ = config.get_int("groups", 1);
  if (groups_ < 1)
    config.fail("config key 'groups' must be a positive integer, got " + std::to_string(groups_));
  if (filters_ % groups_ != 0)
    config.fail("config key 'groups' " + std::to_string(groups_) + " must divide 'filters' " +
                std::to_string(filters_) +
                " (each group has filters / groups output channels); use a groups "
                "that divides both filters and the input's channels");
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  kernel_initializer_ = read_initializer(config, "kernel_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_kernel_regularizers(config);
}

// `groups` is written only when it is not 1: Keras defaults it to 1, and Keras 2.2 and tf.keras
// before 2.3 reject it as an unknown argument.
std::string Conv2D::get_config() const {
  json::object o{{"filters", filters_},
                 {"kernel_size", pair_json(kernel_size_)},
                 {"strides", pair_json(strides_)},
                 {"padding", padding_},
                 {"data_format", "channels_last"},
                 {"dilation_rate", pair_json(dilation_)},
                 {"activation", activation_},
                 {"use_bias", use_bias_},
                 {"kernel_initializer", kernel_initializer_},
                 {"bias_initializer", bias_initializer_}};
  if (groups_ != 1) o["groups"] = groups_;
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape Conv2D::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  if (input_shape[2] % groups_ != 0)
    throw sdk::Error(label_ + ": config key 'groups' " + std::to_string(groups_) +
                     " must divide the input's " + std::to_string(input_shape[2]) +
                     " channels; use a groups that divides both filters and the input's channels");
  Window2D win = dilated_window(label_, input_shape, kernel_size_, dilation_, strides_, padding_ == "same");
  // Keras' kernel: (kh, kw, in / groups, filters), output channel o reading group o / (filters / groups)
  builder.add_weight("kernel", {kernel_size_[0], kernel_size_[1], input_shape[2] / groups_, filters_},
                     json::serialize(kernel_initializer_));
  if (use_bias_) builder.add_weight("bias", {filters_}, json::serialize(bias_initializer_));
  return {win.out_h, win.out_w, filters_};
}

sdk::Tensor Conv2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                         const sdk::Tensor& input) {
  if (weights.size() != (use_bias_ ? 2u : 1u))
    throw sdk::Error(label_ + ": expected " + std::to_string(use_bias_ ? 2 : 1) + " weights, got " +
                     std::to_string(weights.size()));
  Shape shape = input.shape();
  if (shape.size() != 4)
    throw sdk::Error(label_ + ": expects a batch of images (N, H, W, C), got " + shape_text(shape));
  // Padding depends on the input size under "same", so it follows the tensor actually given.
  Window2D win = dilated_window(label_, Shape(shape.begin() + 1, shape.end()), kernel_size_, dilation_,
                                strides_, padding_ == "same");
  sdk::ops::Conv2DOptions options;
  options.strides = {strides_[0], strides_[1]};
  options.pads = win.pads;
  options.dilation = {dilation_[0], dilation_[1]};
  options.groups = groups_;
  // With a bias, one fused op adds it and applies the activation while the convolution writes its
  // output (softmax, which needs whole rows, stays a separate op).
  if (use_bias_ && sdk::is_fusable_activation(activation_))
    return sdk::ops::conv2d_bias(input, weights[0], weights[1], options, activation_);
  sdk::Tensor y = sdk::ops::conv2d(input, weights[0], options);
  // Explicit rank-4 bias, so the add is an equal-rank broadcast on every core.
  if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[1], {1, 1, 1, filters_}));
  return sdk::apply_activation(activation_, y);
}

}  // namespace lamina::layers
