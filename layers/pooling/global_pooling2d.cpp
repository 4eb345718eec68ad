#include "pooling2d.hpp"

namespace lamina::layers {

GlobalPooling2D::GlobalPooling2D(const std::string& config_json, const char* class_name, Kind kind)
    : kind_(kind) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  keepdims_ = config.get_bool("keepdims", false);
  require_channels_last(config);
}

std::string GlobalPooling2D::get_config() const {
  return sdk::to_json({{"data_format", "channels_last"}, {"keepdims", keepdims_}});
}

Shape GlobalPooling2D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  return keepdims_ ? Shape{1, 1, input_shape[2]} : Shape{input_shape[2]};
}

// One window over the whole image: the pooling op's result (N, 1, 1, C), and its gradient rule.
sdk::Tensor GlobalPooling2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                                  const sdk::Tensor& input) {
  const Shape s = input.shape();
  if (s.size() != 4)
    throw sdk::Error(label_ + ": expects a batch of images (N, H, W, C), got " + shape_text(s));
  sdk::ops::Pool2DOptions options;
  options.pool = {s[1], s[2]};
  options.strides = {s[1], s[2]};
  sdk::Tensor y =
      kind_ == Kind::max ? sdk::ops::max_pool2d(input, options) : sdk::ops::avg_pool2d(input, options);
  return keepdims_ ? y : sdk::ops::reshape(y, {s[0], s[3]});
}

}  // namespace lamina::layers
