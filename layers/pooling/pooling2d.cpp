#include "pooling2d.hpp"

namespace lamina::layers {

Pooling2D::Pooling2D(const std::string& config_json, const char* class_name, Kind kind) : kind_(kind) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
  pool_size_ = config.get_pair("pool_size", std::array<int64_t, 2>{2, 2});
  // Keras: strides null means "the pool size" (non-overlapping windows).
  strides_ = config.get_pair("strides", pool_size_);
  padding_ = config.get_choice("padding", "valid", {"valid", "same"});
  require_channels_last(config);
}

// strides always written out, as Keras does, so that readers need not know the null rule.
std::string Pooling2D::get_config() const {
  return sdk::to_json({{"pool_size", pair_json(pool_size_)},
                       {"padding", padding_},
                       {"strides", pair_json(strides_)},
                       {"data_format", "channels_last"}});
}

Shape Pooling2D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_image_input(label_, input_shape);
  Window2D win = window_2d(label_, input_shape, pool_size_, strides_, padding_ == "same", "pool");
  return {win.out_h, win.out_w, input_shape[2]};
}

sdk::Tensor Pooling2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                            const sdk::Tensor& input) {
  Shape shape = input.shape();
  if (shape.size() != 4)
    throw sdk::Error(label_ + ": expects a batch of images (N, H, W, C), got " + shape_text(shape));
  Window2D win = window_2d(label_, Shape(shape.begin() + 1, shape.end()), pool_size_, strides_,
                           padding_ == "same", "pool");
  sdk::ops::Pool2DOptions options;
  options.pool = {pool_size_[0], pool_size_[1]};
  options.strides = {strides_[0], strides_[1]};
  options.pads = win.pads;
  return kind_ == Kind::max ? sdk::ops::max_pool2d(input, options) : sdk::ops::avg_pool2d(input, options);
}

}  // namespace lamina::layers
