// The Keras core layers provided by the lamina_layer_core plugin.
#pragma once

#include "../common/keras_layer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

// Identity: the core resolves batch_input_shape / batch_shape / input_shape itself.
class InputLayer final : public sdk::Layer {
 public:
  explicit InputLayer(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;
};

class Dense final : public sdk::Layer {
 public:
  explicit Dense(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  int64_t units_ = 0;
  std::string activation_;
  bool use_bias_ = true;
  json::value kernel_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

class Activation final : public sdk::Layer {
 public:
  explicit Activation(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string activation_;
};

class Flatten final : public sdk::Layer {
 public:
  explicit Flatten(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  std::string data_format_;
};

// Dropout, and SpatialDropout1D/2D/3D, which drop whole channels: one mask value per sample and
// channel, shared by every step / pixel / voxel. Dropout's noise_shape picks the mask's shape the
// same way (1 on an axis shares the value along it; null takes the input's size).
class Dropout : public sdk::Layer {
 public:
  explicit Dropout(const std::string& config_json) : Dropout(config_json, "Dropout", 0) {}
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  // spatial_rank 1, 2, 3: SpatialDropout1D/2D/3D; 0: Dropout, AlphaDropout.
  Dropout(const std::string& config_json, const char* class_name, int spatial_rank);
  // The mask of 0 and 1/(1-rate) for `input`, of the noise shape (broadcast against the input).
  sdk::Tensor mask(const sdk::CallContext& context, const sdk::Tensor& input) const;
  double rate() const { return rate_; }

 private:
  std::string label_;
  int spatial_rank_ = 0;
  double rate_ = 0.0;
  json::value seed_;
  json::value noise_shape_;  // Dropout's, as read (null: one value per element)
};

template <int SpatialRank>
class SpatialDropout final : public Dropout {
 public:
  static constexpr const char* kClassName = SpatialRank == 1   ? "SpatialDropout1D"
                                            : SpatialRank == 2 ? "SpatialDropout2D"
                                                               : "SpatialDropout3D";
  explicit SpatialDropout(const std::string& config_json) : Dropout(config_json, kClassName, SpatialRank) {}
};

// AlphaDropout keeps a SELU network's mean and variance: dropped units take SELU's negative
// saturation value, then an affine map restores the statistics (Keras' formula).
class AlphaDropout final : public Dropout {
 public:
  explicit AlphaDropout(const std::string& config_json) : Dropout(config_json, "AlphaDropout", 0) {}
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;
};

// GaussianNoise adds N(0, stddev²) noise in training; GaussianDropout multiplies by N(1, rate/(1-rate))
// noise. Both pass inputs through unchanged in inference.
class GaussianNoise : public sdk::Layer {
 public:
  explicit GaussianNoise(const std::string& config_json) : GaussianNoise(config_json, "GaussianNoise") {}
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  GaussianNoise(const std::string& config_json, const char* class_name);

 private:
  std::string label_;
  bool multiplicative_ = false;  // GaussianDropout
  double amount_ = 0.0;          // stddev (GaussianNoise) or rate (GaussianDropout), as configured
  json::value seed_;
};

class GaussianDropout final : public GaussianNoise {
 public:
  explicit GaussianDropout(const std::string& config_json) : GaussianNoise(config_json, "GaussianDropout") {}
};

class Reshape final : public sdk::Layer {
 public:
  explicit Reshape(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  // target_shape with its -1 resolved against one sample of `input_shape`.
  Shape resolve(const Shape& input_shape) const;
  std::string label_;
  Shape target_;
};

// Keras Embedding: each index of the input (a whole number in [0, input_dim), held as a float)
// becomes its row of the (input_dim, output_dim) table `embeddings`; the gather op.
class Embedding final : public sdk::Layer {
 public:
  explicit Embedding(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  int64_t input_dim_ = 0;
  int64_t output_dim_ = 0;
  int64_t input_length_ = 0;  // tf_keras; 0: not given
  json::value embeddings_initializer_;
  json::object regularizers_;
};

}  // namespace lamina::layers
