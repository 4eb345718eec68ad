// What Conv2D, DepthwiseConv2D and SeparableConv2D read alike: `dilation_rate` (refused with
// strides > 1, as Keras does) and the output size and pads of a dilated window; and the depthwise
// step DepthwiseConv2D and SeparableConv2D share (DepthwiseKeys).
#pragma once

#include "../common/keras_layer.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace lamina::layers {

// dilation_rate: an integer or two, each >= 1 (default 1). Keras refuses dilation_rate > 1 with
// strides > 1, and so does lamina.
inline std::array<int64_t, 2> read_dilation(const Config& config, const std::array<int64_t, 2>& strides) {
  const std::array<int64_t, 2> rate = config.get_pair("dilation_rate", std::array<int64_t, 2>{1, 1});
  if (std::max(rate[0], rate[1]) > 1 && std::max(strides[0], strides[1]) > 1)
    config.fail("config key 'dilation_rate' [" + std::to_string(rate[0]) + ", " + std::to_string(rate[1]) +
                "] cannot be combined with strides [" + std::to_string(strides[0]) + ", " +
                std::to_string(strides[1]) +
                "] (Keras refuses strides > 1 with dilation_rate > 1 too); use "
                "strides 1 or dilation_rate 1");
  return rate;
}

// The window of a kernel of `kernel` taps `dilation` apart: it spans (k − 1)·d + 1 cells per axis,
// and "valid" and "same" apply to that span, as in TensorFlow.
inline Window2D dilated_window(const std::string& label, const Shape& input,
                               const std::array<int64_t, 2>& kernel, const std::array<int64_t, 2>& dilation,
                               const std::array<int64_t, 2>& strides, bool same) {
  const std::array<int64_t, 2> span{(kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1};
  return window_2d(label, input, span, strides, same, span == kernel ? "kernel" : "dilated kernel");
}

// The keys of the depthwise step DepthwiseConv2D and SeparableConv2D share: kernel_size, strides,
// padding, depth_multiplier, data_format, dilation_rate (and tf_keras' groups, which must be 1).
struct DepthwiseKeys {
  std::array<int64_t, 2> kernel_size{};
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilation{1, 1};
  std::string padding;
  int64_t depth_multiplier = 1;

  explicit DepthwiseKeys(const Config& config) {
    if (!config.has("kernel_size"))
      config.fail("config key 'kernel_size' is missing; give the window size, e.g. 3 or [3, 3]");
    kernel_size = config.get_pair("kernel_size", std::nullopt);
    strides = config.get_pair("strides", std::array<int64_t, 2>{1, 1});
    padding = config.get_choice("padding", "valid", {"valid", "same"});
    depth_multiplier = config.get_int("depth_multiplier", 1);
    if (depth_multiplier < 1)
      config.fail(
          "config key 'depth_multiplier' must be a positive integer (the output channels per input "
          "channel), got " +
          std::to_string(depth_multiplier));
    require_channels_last(config);
    dilation = read_dilation(config, strides);
    // tf_keras writes `groups` (inherited from its Conv2D); each input channel is its own group here.
    if (config.get_int("groups", 1) != 1)
      config.fail(
          "config key 'groups' must be 1, got " + std::to_string(config.get_int("groups", 1)) +
          " (each input channel is convolved on its own; depth_multiplier sets the outputs per channel)");
  }

  // The keys as Keras writes them.
  void write(json::object& o) const {
    o["kernel_size"] = pair_json(kernel_size);
    o["strides"] = pair_json(strides);
    o["padding"] = padding;
    o["depth_multiplier"] = depth_multiplier;
    o["data_format"] = "channels_last";
    o["dilation_rate"] = pair_json(dilation);
  }

  // The depthwise convolution of `input` (N, H, W, C) with Keras' depthwise kernel (kh, kw, C,
  // depth_multiplier): conv2d with groups C over the kernel read as (kh, kw, 1, C·depth_multiplier),
  // so output channel c·depth_multiplier + m comes from input channel c. With `bias`, the fused op
  // adds it and applies `activation` (a fusable one).
  sdk::Tensor apply(const std::string& label, const sdk::Tensor& input, const sdk::Tensor& kernel,
                    const sdk::Tensor* bias = nullptr, const std::string& activation = "linear") const {
    Shape shape = input.shape();
    if (shape.size() != 4)
      throw sdk::Error(label + ": expects a batch of images (N, H, W, C), got " + shape_text(shape));
    const int64_t channels = shape[3];
    Window2D win = dilated_window(label, Shape(shape.begin() + 1, shape.end()), kernel_size, dilation,
                                  strides, padding == "same");
    sdk::ops::Conv2DOptions options;
    options.strides = {strides[0], strides[1]};
    options.pads = win.pads;
    options.dilation = {dilation[0], dilation[1]};
    options.groups = channels;
    const sdk::Tensor grouped =
        sdk::ops::reshape(kernel, {kernel_size[0], kernel_size[1], 1, channels * depth_multiplier});
    if (bias) return sdk::ops::conv2d_bias(input, grouped, *bias, options, activation);
    return sdk::ops::conv2d(input, grouped, options);
  }
};

}  // namespace lamina::layers
