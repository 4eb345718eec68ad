// Keras reshaping layers over the layout ops (docs/ops.md, "Layout"): ZeroPadding2D, Cropping2D,
// UpSampling2D, Permute and RepeatVector. Images are NHWC (channels_last); shapes exclude the batch.
#pragma once

#include "../common/keras_layer.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

// Cells added (ZeroPadding2D) or removed (Cropping2D) on each side: top, bottom, left, right.
using Sides2D = std::array<int64_t, 4>;

class ZeroPadding2D final : public sdk::Layer {
 public:
  explicit ZeroPadding2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  Sides2D padding_{1, 1, 1, 1};
};

class Cropping2D final : public sdk::Layer {
 public:
  explicit Cropping2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  Sides2D cropping_{0, 0, 0, 0};
};

// interpolation "nearest" (each pixel repeated size[0] times down and size[1] times across) or
// "bilinear" (half-pixel centres, as Keras and TensorFlow resize images).
class UpSampling2D final : public sdk::Layer {
 public:
  explicit UpSampling2D(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  static sdk::Tensor linear_upsample(const sdk::Tensor& x, int64_t axis, int64_t factor);

  std::string label_;
  std::array<int64_t, 2> size_{2, 2};
  std::string interpolation_ = "nearest";
};

// dims: a permutation of 1..rank (the batch axis stays first), as Keras writes it.
class Permute final : public sdk::Layer {
 public:
  explicit Permute(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  Shape dims_;
};

// (batch, features) → (batch, n, features).
class RepeatVector final : public sdk::Layer {
 public:
  explicit RepeatVector(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  int64_t n_ = 1;
};

}  // namespace lamina::layers
