#include "reshaping_layers.hpp"

namespace lamina::layers {

namespace {

int64_t as_count(const Config& config, const char* key, const json::value& v) {
  if (!v.is_int64() && !v.is_uint64())
    config.fail(std::string("config key '") + key + "' must hold non-negative integers, got " +
                value_text(v));
  int64_t n = v.is_int64() ? v.as_int64() : int64_t(v.as_uint64());
  if (n < 0) config.fail(std::string("config key '") + key + "' must not be negative, got " + value_text(v));
  return n;
}

// Keras' three spellings of a 2-D padding or cropping: n (every side), [h, w] (top and bottom h, left
// and right w) and [[top, bottom], [left, right]].
Sides2D read_sides(const Config& config, const char* key, Sides2D fallback) {
  if (!config.has(key)) return fallback;
  const json::value& v = config.object().at(key);
  const std::string help = std::string("config key '") + key +
                           "' must be an integer, [height, width] or [[top, bottom], [left, right]], got " +
                           value_text(v);
  if (!v.is_array()) {
    int64_t n = as_count(config, key, v);
    return {n, n, n, n};
  }
  const json::array& a = v.as_array();
  if (a.size() != 2) config.fail(help);
  if (!a[0].is_array() && !a[1].is_array()) {
    int64_t h = as_count(config, key, a[0]), w = as_count(config, key, a[1]);
    return {h, h, w, w};
  }
  if (!a[0].is_array() || !a[1].is_array() || a[0].as_array().size() != 2 || a[1].as_array().size() != 2)
    config.fail(help);
  return {as_count(config, key, a[0].as_array()[0]), as_count(config, key, a[0].as_array()[1]),
          as_count(config, key, a[1].as_array()[0]), as_count(config, key, a[1].as_array()[1])};
}

json::array sides_json(const Sides2D& s) {
  return json::array{json::array{s[0], s[1]}, json::array{s[2], s[3]}};
}

// (N, H, W, C) or the per-sample (H, W, C).
void require_image(const std::string& label, const Shape& shape, size_t rank) {
  if (shape.size() != rank)
    throw sdk::Error(label + ": expects images (height, width, channels), got input shape " +
                     shape_text(shape));
}

// x with a batch axis in front: shape (batch, rest...).
Shape with_batch(const sdk::Tensor& x, const Shape& rest) {
  Shape out{x.shape().empty() ? 1 : x.shape()[0]};
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// ZeroPadding2D

ZeroPadding2D::ZeroPadding2D(const std::string& config_json) {
  Config config(config_json, "ZeroPadding2D");
  label_ = layer_label("ZeroPadding2D", config);
  padding_ = read_sides(config, "padding", {1, 1, 1, 1});
  require_channels_last(config);
}

std::string ZeroPadding2D::get_config() const {
  return sdk::to_json({{"padding", sides_json(padding_)}, {"data_format", "channels_last"}});
}

Shape ZeroPadding2D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_image(label_, input_shape, 3);
  return {input_shape[0] + padding_[0] + padding_[1], input_shape[1] + padding_[2] + padding_[3],
          input_shape[2]};
}

sdk::Tensor ZeroPadding2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                                const sdk::Tensor& x) {
  require_image(label_, x.shape(), 4);
  return sdk::ops::pad(x, {0, padding_[0], padding_[2], 0}, {0, padding_[1], padding_[3], 0});
}

// ------------------------------------------------------------------------------------------------
// Cropping2D

Cropping2D::Cropping2D(const std::string& config_json) {
  Config config(config_json, "Cropping2D");
  label_ = layer_label("Cropping2D", config);
  cropping_ = read_sides(config, "cropping", {0, 0, 0, 0});
  require_channels_last(config);
}

std::string Cropping2D::get_config() const {
  return sdk::to_json({{"cropping", sides_json(cropping_)}, {"data_format", "channels_last"}});
}

Shape Cropping2D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_image(label_, input_shape, 3);
  int64_t h = input_shape[0] - cropping_[0] - cropping_[1], w = input_shape[1] - cropping_[2] - cropping_[3];
  if (h < 1 || w < 1)
    throw sdk::Error(label_ + ": cropping " + shape_text(Shape(cropping_.begin(), cropping_.end())) +
                     " (top, bottom, left, right) leaves nothing of a " + std::to_string(input_shape[0]) +
                     "x" + std::to_string(input_shape[1]) + " image");
  return {h, w, input_shape[2]};
}

sdk::Tensor Cropping2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  require_image(label_, x.shape(), 4);
  const Shape s = x.shape();
  return sdk::ops::slice(x, {1, 2}, {cropping_[0], cropping_[2]}, {s[1] - cropping_[1], s[2] - cropping_[3]});
}

// ------------------------------------------------------------------------------------------------
// UpSampling2D

UpSampling2D::UpSampling2D(const std::string& config_json) {
  Config config(config_json, "UpSampling2D");
  label_ = layer_label("UpSampling2D", config);
  size_ = config.get_pair("size", std::array<int64_t, 2>{2, 2});
  if (size_[0] < 1 || size_[1] < 1)
    config.fail("config key 'size' must be positive, got [" + std::to_string(size_[0]) + ", " +
                std::to_string(size_[1]) + "]");
  // Keras 3's and tf_keras' names; lamina has the two that Keras' UpSampling2D is mostly used with.
  interpolation_ = config.get_choice(
      "interpolation", "nearest",
      {"nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area", "gaussian", "mitchellcubic"});
  if (interpolation_ != "nearest" && interpolation_ != "bilinear")
    config.fail("config key 'interpolation' is '" + interpolation_ +
                "', which lamina does not provide yet; use \"nearest\" or \"bilinear\"");
  require_channels_last(config);
}

std::string UpSampling2D::get_config() const {
  return sdk::to_json(
      {{"size", pair_json(size_)}, {"data_format", "channels_last"}, {"interpolation", interpolation_}});
}

Shape UpSampling2D::build(sdk::LayerBuilder&, const Shape& input_shape) {
  require_image(label_, input_shape, 3);
  return {input_shape[0] * size_[0], input_shape[1] * size_[1], input_shape[2]};
}

// Each pixel broadcast over a size[0] x size[1] block: (N, H, 1, W, 1, C) · ones(1, 1, sh, 1, sw, 1),
// then read as (N, H·sh, W·sw, C). The product's gradient sums each block back to its pixel.
sdk::Tensor UpSampling2D::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                               const sdk::Tensor& x) {
  require_image(label_, x.shape(), 4);
  if (interpolation_ == "bilinear") return linear_upsample(linear_upsample(x, 1, size_[0]), 2, size_[1]);
  const Shape s = x.shape();
  sdk::Tensor blocks = sdk::ops::mul(sdk::ops::reshape(x, {s[0], s[1], 1, s[2], 1, s[3]}),
                                     sdk::ops::full({1, 1, size_[0], 1, size_[1], 1}, 1.0f));
  return sdk::ops::reshape(blocks, {s[0], s[1] * size_[0], s[2] * size_[1], s[3]});
}

// x (N, H, W, C) stretched `factor` times along `axis` (1: rows, 2: columns) by linear
// interpolation with half-pixel centres, as tf.image.resize and jax.image.resize (under Keras 3's
// ops.image.resize, and tf_keras' UpSampling2D) compute it: output i reads the input at
// p = (i + 1/2) / factor − 1/2, between its neighbours floor(p) and floor(p) + 1, clamped at the
// edges. Output k·factor + r lies at p = k + f with f = (2r + 1 − factor) / (2·factor) in (−1/2, 1/2):
// (1 + f)·x[k] − f·x[k − 1] below k, (1 − f)·x[k] + f·x[k + 1] above. Each phase r is such a sum of
// x and x shifted by one (edge rows repeated); the phases are interleaved by a concat on a new axis.
// Bilinear is this along the rows, then along the columns.
sdk::Tensor UpSampling2D::linear_upsample(const sdk::Tensor& x, int64_t axis, int64_t factor) {
  if (factor == 1) return x;
  const Shape shape = x.shape();
  const int64_t n = shape[size_t(axis)];
  sdk::Tensor previous = x, next = x;  // x[max(k − 1, 0)] and x[min(k + 1, n − 1)]
  if (n > 1) {
    previous = sdk::ops::concat(
        {sdk::ops::slice(x, {axis}, {0}, {1}), sdk::ops::slice(x, {axis}, {0}, {n - 1})}, axis);
    next = sdk::ops::concat({sdk::ops::slice(x, {axis}, {1}, {n}), sdk::ops::slice(x, {axis}, {n - 1}, {n})},
                            axis);
  }
  Shape phase_shape = shape;
  phase_shape.insert(phase_shape.begin() + axis + 1, 1);
  std::vector<sdk::Tensor> phases;
  for (int64_t r = 0; r < factor; ++r) {
    const double f = double(2 * r + 1 - factor) / double(2 * factor);
    sdk::Tensor phase = x;
    if (f < 0) phase = sdk::ops::add(sdk::ops::scale(x, 1.0 + f), sdk::ops::scale(previous, -f));
    if (f > 0) phase = sdk::ops::add(sdk::ops::scale(x, 1.0 - f), sdk::ops::scale(next, f));
    phases.push_back(sdk::ops::reshape(phase, phase_shape));
  }
  Shape out = shape;
  out[size_t(axis)] = n * factor;
  return sdk::ops::reshape(sdk::ops::concat(phases, axis + 1), out);
}

// ------------------------------------------------------------------------------------------------
// Permute

Permute::Permute(const std::string& config_json) {
  Config config(config_json, "Permute");
  label_ = layer_label("Permute", config);
  if (!config.has("dims")) config.fail("config key 'dims' is missing; give a permutation such as [2, 1]");
  const json::value& v = config.object().at("dims");
  if (!v.is_array() || v.as_array().empty() || v.as_array().size() > LAMINA_MAX_DIMS - 1)
    config.fail("config key 'dims' must be a list of axes 1..rank, got " + value_text(v));
  std::vector<bool> seen(v.as_array().size() + 1, false);
  for (const json::value& d : v.as_array()) {
    int64_t a = d.is_int64() ? d.as_int64() : d.is_uint64() ? int64_t(d.as_uint64()) : 0;
    if (a < 1 || a >= int64_t(seen.size()) || seen[size_t(a)])
      config.fail("config key 'dims' must name each axis 1.." + std::to_string(seen.size() - 1) +
                  " once (axis 0 is the batch), got " + value_text(v));
    seen[size_t(a)] = true;
    dims_.push_back(a);
  }
}

std::string Permute::get_config() const {
  json::array dims;
  for (int64_t d : dims_) dims.push_back(d);
  return sdk::to_json({{"dims", dims}});
}

Shape Permute::build(sdk::LayerBuilder&, const Shape& input_shape) {
  if (input_shape.size() != dims_.size())
    throw sdk::Error(label_ + ": dims " + shape_text(dims_) + " permute " + std::to_string(dims_.size()) +
                     " axes, but the input " + shape_text(input_shape) + " has " +
                     std::to_string(input_shape.size()));
  Shape out;
  for (int64_t d : dims_) out.push_back(input_shape[size_t(d - 1)]);
  return out;
}

sdk::Tensor Permute::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) {
  Shape perm{0};
  perm.insert(perm.end(), dims_.begin(), dims_.end());
  return sdk::ops::transpose(x, perm);
}

// ------------------------------------------------------------------------------------------------
// RepeatVector

RepeatVector::RepeatVector(const std::string& config_json) {
  Config config(config_json, "RepeatVector");
  label_ = layer_label("RepeatVector", config);
  if (!config.has("n")) config.fail("config key 'n' is missing; give how many times to repeat the input");
  n_ = config.get_int("n", 1);
  if (n_ < 1) config.fail("config key 'n' must be at least 1, got " + std::to_string(n_));
}

std::string RepeatVector::get_config() const {
  return sdk::to_json({{"n", n_}});
}

Shape RepeatVector::build(sdk::LayerBuilder&, const Shape& input_shape) {
  if (input_shape.size() != 1)
    throw sdk::Error(label_ + ": expects vectors (features,), got input shape " + shape_text(input_shape) +
                     "; put a Flatten layer before it");
  return {n_, input_shape[0]};
}

sdk::Tensor RepeatVector::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                               const sdk::Tensor& x) {
  const Shape s = x.shape();
  if (s.size() != 2) throw sdk::Error(label_ + ": expects a batch of vectors, got " + shape_text(s));
  return sdk::ops::mul(sdk::ops::reshape(x, with_batch(x, {1, s[1]})), sdk::ops::full({1, n_, 1}, 1.0f));
}

}  // namespace lamina::layers
