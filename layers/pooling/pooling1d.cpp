#include "pooling2d.hpp"

namespace lamina::layers {

Pooling1D::Pooling1D(const std::string& config_json, const char* class_name, Kind kind) : kind_(kind) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  pool_size_ = get_single(config, "pool_size", 2);
  // Keras: strides null means "the pool size" (non-overlapping windows).
  strides_ = get_single(config, "strides", pool_size_);
  padding_ = config.get_choice("padding", "valid", {"valid", "same"});
  require_channels_last(config);
}

std::string Pooling1D::get_config() const {
  return sdk::to_json({{"pool_size", json::array{pool_size_}},
                       {"padding", padding_},
                       {"strides", json::array{strides_}},
                       {"data_format", "channels_last"}});
}

WindowAxis Pooling1D::window(int64_t steps) const {
  WindowAxis a = window_axis(steps, pool_size_, strides_, padding_ == "same");
  if (a.out < 1)
    throw sdk::Error(label_ + ": the input's " + std::to_string(steps) + " steps are fewer than the pool's " +
                     std::to_string(pool_size_) +
                     " under padding \"valid\"; use padding \"same\", a smaller pool_size or a longer input");
  return a;
}

Shape Pooling1D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_sequence_input(label_, input_shape);
  return {window(input_shape[0]).out, input_shape[1]};
}

sdk::Tensor Pooling1D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                            const sdk::Tensor& input) {
  Shape s = input.shape();
  if (s.size() != 3)
    throw sdk::Error(label_ + ": expects a batch of sequences (N, steps, channels), got " + shape_text(s));
  WindowAxis a = window(s[1]);
  sdk::ops::Pool2DOptions options;
  options.pool = {1, pool_size_};
  options.strides = {1, strides_};
  options.pads = {0, 0, a.pad_before, a.pad_after};
  sdk::Tensor x = sdk::ops::reshape(input, {s[0], 1, s[1], s[2]});
  sdk::Tensor y = kind_ == Kind::max ? sdk::ops::max_pool2d(x, options) : sdk::ops::avg_pool2d(x, options);
  return sdk::ops::reshape(y, {s[0], a.out, s[2]});
}

GlobalPooling1D::GlobalPooling1D(const std::string& config_json, const char* class_name, Kind kind)
    : kind_(kind) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  keepdims_ = config.get_bool("keepdims", false);
  require_channels_last(config);
}

std::string GlobalPooling1D::get_config() const {
  return sdk::to_json({{"data_format", "channels_last"}, {"keepdims", keepdims_}});
}

Shape GlobalPooling1D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_sequence_input(label_, input_shape);
  return keepdims_ ? Shape{1, input_shape[1]} : Shape{input_shape[1]};
}

// One window over every step: the pooling op's result (N, 1, 1, C), and its gradient rule.
sdk::Tensor GlobalPooling1D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                                  const sdk::Tensor& input) {
  const Shape s = input.shape();
  if (s.size() != 3)
    throw sdk::Error(label_ + ": expects a batch of sequences (N, steps, channels), got " + shape_text(s));
  sdk::ops::Pool2DOptions options;
  options.pool = {1, s[1]};
  options.strides = {1, s[1]};
  sdk::Tensor x = sdk::ops::reshape(input, {s[0], 1, s[1], s[2]});
  sdk::Tensor y = kind_ == Kind::max ? sdk::ops::max_pool2d(x, options) : sdk::ops::avg_pool2d(x, options);
  return sdk::ops::reshape(y, keepdims_ ? Shape{s[0], 1, s[2]} : Shape{s[0], s[2]});
}

}  // namespace lamina::layers
