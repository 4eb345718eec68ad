// Keras' normalization layers, composed of ops so that every backend runs them and autograd
// differentiates them (the batch statistics included):
//   BatchNormalization: per feature of `axis`, statistics over every other axis (the batch's
//     included); the batch's in training, which also move moving_mean and moving_variance, the
//     moving ones in inference.
//   LayerNormalization: per sample, statistics over the axes of `axis`.
// Both compute y = (x − mean) · gamma / √(variance + epsilon) + beta with the biased variance.
#pragma once

#include "../common/keras_layer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

// The `axis` key: an integer or a list of integers, counted on the input with its batch axis (0 is
// the batch, −1 the last axis). `raw` is the value as the config wrote it, for get_config.
struct AxisKey {
  json::value raw;
  std::vector<int64_t> axes;
};
AxisKey read_axis(const Config& config, const json::value& fallback);

// `axes` as positions 1..rank−1 of an input of `rank` axes (batch included), in the given order;
// throws naming the layer, the key and the input for an axis out of range, the batch axis or a
// repeated axis.
std::vector<int64_t> resolve_axes(const std::string& label, const std::vector<int64_t>& axes,
                                  const Shape& input);

// The `epsilon` key, >= 0.
double read_epsilon(const Config& config);

// The mean of x over `axes`, keeping them as size 1.
sdk::Tensor mean_over(const sdk::Tensor& x, const Shape& axes);

// Weights: gamma (if scale), beta (if center), moving_mean, moving_variance (the last two not
// trainable), each of shape (features,) for features = the input's size along `axis`.
class BatchNormalization final : public sdk::Layer {
 public:
  explicit BatchNormalization(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  sdk::Tensor call_channels_last(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                                 const sdk::Tensor& x);
  void move_statistics(const sdk::Tensor& moving_mean, const sdk::Tensor& moving_variance,
                       const sdk::Tensor& mean, const sdk::Tensor& variance) const;
  std::string label_;
  AxisKey axis_;
  int64_t position_ = 0;  // axis_ resolved at build: 1..rank−1 of the input with its batch axis
  double momentum_ = 0.99;
  double epsilon_ = 1e-3;
  bool center_ = true, scale_ = true;
  bool frozen_ = false;  // "trainable": false runs in inference mode, as in Keras
  json::value beta_initializer_, gamma_initializer_, moving_mean_initializer_, moving_variance_initializer_;
  json::object regularizers_;  // regularizers and constraints
  json::object passed_on_;  // optional keys of one Keras flavour, written back only when read
};

// Weights: gamma (if scale), beta (if center), shaped like the input's sizes along `axis`, in the
// order `axis` lists them.
class LayerNormalization final : public sdk::Layer {
 public:
  explicit LayerNormalization(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  AxisKey axis_;
  std::vector<int64_t> positions_;  // axis_ resolved at build, as for BatchNormalization
  double epsilon_ = 1e-3;
  bool center_ = true, scale_ = true;
  json::value beta_initializer_, gamma_initializer_;
  json::object regularizers_;
  json::object passed_on_;
};

}  // namespace lamina::layers
