#include "conv1d.hpp"

namespace lamina::layers {

Conv1D::Conv1D(const std::string& config_json) {
  Config config(config_json, "Conv1D");
  label_ = layer_label("Conv1D", config);
  filters_ = read_filters(config);
  if (!config.has("kernel_size"))
    config.fail("config key 'kernel_size' is missing; give the window length, e.g. 3 or [3]");
  kernel_size_ = get_single(config, "kernel_size", 1);
  strides_ = get_single(config, "strides", 1);
  padding_ = config.get_choice("padding", "valid", {"valid", "same", "causal"});
  require_channels_last(config);
  if (get_single(config, "dilation_rate", 1) != 1)
    config.fail("dilation_rate other than 1 is not supported yet; use dilation_rate [1]");
  if (config.get_int("groups", 1) != 1)
    config.fail("groups other than 1 is not supported yet; use groups 1 (a plain convolution)");
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  kernel_initializer_ = read_initializer(config, "kernel_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_kernel_regularizers(config);
}

// `groups` left out as for Conv2D: always 1 here, and older Keras versions reject the key.
std::string Conv1D::get_config() const {
  json::object o{{"filters", filters_},
                 {"kernel_size", json::array{kernel_size_}},
                 {"strides", json::array{strides_}},
                 {"padding", padding_},
                 {"data_format", "channels_last"},
                 {"dilation_rate", json::array{1}},
                 {"activation", activation_},
                 {"use_bias", use_bias_},
                 {"kernel_initializer", kernel_initializer_},
                 {"bias_initializer", bias_initializer_}};
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

// "causal" pads kernel_size - 1 steps before the sequence, so output t sees inputs up to t only.
WindowAxis Conv1D::window(int64_t steps) const {
  WindowAxis a;
  if (padding_ == "causal") {
    a.pad_before = kernel_size_ - 1;
    a.out = (steps - 1) / strides_ + 1;
  } else {
    a = window_axis(steps, kernel_size_, strides_, padding_ == "same");
  }
  if (a.out < 1)
    throw sdk::Error(
        label_ + ": the input's " + std::to_string(steps) + " steps are fewer than the kernel's " +
        std::to_string(kernel_size_) +
        " under padding \"valid\"; use padding \"same\" or \"causal\", a smaller kernel_size or a "
        "longer input");
  return a;
}

Shape Conv1D::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  require_sequence_input(label_, input_shape);
  WindowAxis a = window(input_shape[0]);
  builder.add_weight("kernel", {kernel_size_, input_shape[1], filters_},
                     json::serialize(kernel_initializer_));
  if (use_bias_) builder.add_weight("bias", {filters_}, json::serialize(bias_initializer_));
  return {a.out, filters_};
}

sdk::Tensor Conv1D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                         const sdk::Tensor& input) {
  if (weights.size() != (use_bias_ ? 2u : 1u))
    throw sdk::Error(label_ + ": expected " + std::to_string(use_bias_ ? 2 : 1) + " weights, got " +
                     std::to_string(weights.size()));
  Shape s = input.shape();
  if (s.size() != 3)
    throw sdk::Error(label_ + ": expects a batch of sequences (N, steps, channels), got " + shape_text(s));
  WindowAxis a = window(s[1]);
  // (N, 1, steps, C) images and a (1, k, C, F) kernel: the convolution runs along the width.
  sdk::Tensor x = sdk::ops::reshape(input, {s[0], 1, s[1], s[2]});
  sdk::Tensor w = sdk::ops::reshape(weights[0], {1, kernel_size_, s[2], filters_});
  sdk::ops::Conv2DOptions options;
  options.strides = {1, strides_};
  options.pads = {0, 0, a.pad_before, a.pad_after};
  sdk::Tensor y;
  if (use_bias_ && sdk::is_fusable_activation(activation_)) {
    y = sdk::ops::conv2d_bias(x, w, weights[1], options, activation_);
  } else {
    y = sdk::ops::conv2d(x, w, options);
    if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[1], {1, 1, 1, filters_}));
    y = sdk::apply_activation(activation_, y);
  }
  return sdk::ops::reshape(y, {s[0], a.out, filters_});
}

}  // namespace lamina::layers
