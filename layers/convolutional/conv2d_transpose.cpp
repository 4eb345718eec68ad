#include "conv2d_transpose.hpp"

#include <algorithm>

namespace lamina::layers {

namespace {

// output_padding: null (Keras' None), an integer n for (n, n), or a list of two; each at least 0.
std::optional<std::array<int64_t, 2>> read_output_padding(const Config& config) {
  if (!config.has("output_padding")) return std::nullopt;
  const json::value& v = config.object().at("output_padding");
  auto whole = [](const json::value& x) -> std::optional<int64_t> {
    if (x.is_int64()) return x.as_int64();
    if (x.is_uint64() && x.as_uint64() <= 1u << 30) return int64_t(x.as_uint64());
    return std::nullopt;
  };
  std::optional<int64_t> a, b;
  if (v.is_array() && v.as_array().size() == 2) {
    a = whole(v.as_array()[0]);
    b = whole(v.as_array()[1]);
  } else {
    a = b = whole(v);
  }
  if (!a || !b || *a < 0 || *b < 0)
    config.fail("config key 'output_padding' must be null, an integer >= 0 or a list of two, got " +
                value_text(v));
  return std::array<int64_t, 2>{*a, *b};
}

}  // namespace

Conv2DTranspose::Conv2DTranspose(const std::string& config_json) {
  Config config(config_json, "Conv2DTranspose");
  label_ = layer_label("Conv2DTranspose", config);
  filters_ = read_filters(config);
  if (!config.has("kernel_size"))
    config.fail("config key 'kernel_size' is missing; give the window size, e.g. 3 or [3, 3]");
  kernel_size_ = config.get_pair("kernel_size", std::nullopt);
  strides_ = config.get_pair("strides", std::array<int64_t, 2>{1, 1});
  padding_ = config.get_choice("padding", "valid", {"valid", "same"});
  output_padding_ = read_output_padding(config);
  if (output_padding_)
    for (int axis : {0, 1})
      if ((*output_padding_)[axis] >= strides_[axis])
        config.fail("config key 'output_padding' [" + std::to_string((*output_padding_)[0]) + ", " +
                    std::to_string((*output_padding_)[1]) + "] must be less than strides [" +
                    std::to_string(strides_[0]) + ", " + std::to_string(strides_[1]) +
                    "] on each axis (Keras refuses it too); use a smaller output_padding or null");
  require_channels_last(config);
  if (config.get_pair("dilation_rate", std::array<int64_t, 2>{1, 1}) != std::array<int64_t, 2>{1, 1})
    config.fail("dilation_rate other than 1 is not supported yet; use dilation_rate [1, 1]");
  // tf_keras writes `groups` (inherited from Conv2D); Keras itself only accepts 1 here.
  if (config.get_int("groups", 1) != 1)
    config.fail("config key 'groups' must be 1 for Conv2DTranspose, got " +
                std::to_string(config.get_int("groups", 1)));
  activation_ = read_activation(config, false);
  use_bias_ = config.get_bool("use_bias", true);
  kernel_initializer_ = read_initializer(config, "kernel_initializer", "glorot_uniform");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_kernel_regularizers(config);
}

// Keras 3's keys (no `groups`, which tf_keras writes and Keras 3 rejects for this class).
std::string Conv2DTranspose::get_config() const {
  json::object o{{"filters", filters_},
                 {"kernel_size", pair_json(kernel_size_)},
                 {"strides", pair_json(strides_)},
                 {"padding", padding_},
                 {"output_padding", output_padding_ ? json::value(pair_json(*output_padding_)) : nullptr},
                 {"data_format", "channels_last"},
                 {"dilation_rate", json::array{1, 1}},
                 {"activation", activation_},
                 {"use_bias", use_bias_},
                 {"kernel_initializer", kernel_initializer_},
                 {"bias_initializer", bias_initializer_}};
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

// Per axis, Keras' deconv_output_length for the output size; the pads are those TensorFlow gives
// the conv2d mapping that output back onto the input ("same": max((in − 1)·s + k − out, 0) cells,
// the odd one after; "valid": none, any rows past the last window get only the bias).
Conv2DTranspose::Geometry Conv2DTranspose::geometry(int64_t height, int64_t width) const {
  Geometry g;
  const int64_t in[2] = {height, width};
  for (int axis : {0, 1}) {
    const int64_t k = kernel_size_[axis], s = strides_[axis];
    int64_t out = 0;
    if (!output_padding_)
      out = padding_ == "valid" ? in[axis] * s + std::max<int64_t>(k - s, 0) : in[axis] * s;
    else
      out = (in[axis] - 1) * s + k - (padding_ == "same" ? 2 * (k / 2) : 0) + (*output_padding_)[axis];
    const int64_t total = padding_ == "same" ? std::max<int64_t>((in[axis] - 1) * s + k - out, 0) : 0;
    g.output_size.push_back(out);
    g.pads.push_back(total / 2);
    g.pads.push_back(total - total / 2);
  }
  return g;
}

Shape Conv2DTranspose::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  Geometry g = geometry(input_shape[0], input_shape[1]);
  if (g.output_size[0] < 1 || g.output_size[1] < 1)
    throw sdk::Error(label_ + ": the output would be " + std::to_string(g.output_size[0]) + "x" +
                     std::to_string(g.output_size[1]) + " for an input of " + shape_text(input_shape));
  builder.add_weight("kernel", {kernel_size_[0], kernel_size_[1], filters_, input_shape[2]},
                     json::serialize(kernel_initializer_));
  if (use_bias_) builder.add_weight("bias", {filters_}, json::serialize(bias_initializer_));
  return {g.output_size[0], g.output_size[1], filters_};
}

sdk::Tensor Conv2DTranspose::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                                  const sdk::Tensor& input) {
  if (weights.size() != (use_bias_ ? 2u : 1u))
    throw sdk::Error(label_ + ": expected " + std::to_string(use_bias_ ? 2 : 1) + " weights, got " +
                     std::to_string(weights.size()));
  Shape shape = input.shape();
  if (shape.size() != 4)
    throw sdk::Error(label_ + ": expects a batch of images (N, H, W, C), got " + shape_text(shape));
  Geometry g = geometry(shape[1], shape[2]);
  sdk::ops::Conv2DOptions options;
  options.strides = {strides_[0], strides_[1]};
  options.pads = g.pads;
  sdk::Tensor y = sdk::ops::conv2d_transpose(input, weights[0], g.output_size, options);
  // Explicit rank-4 bias, so the add is an equal-rank broadcast on every core.
  if (use_bias_) y = sdk::ops::add(y, sdk::ops::reshape(weights[1], {1, 1, 1, filters_}));
  return sdk::apply_activation(activation_, y);
}

}  // namespace lamina::layers
