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
  json::object unapplied_;
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

class Dropout final : public sdk::Layer {
 public:
  explicit Dropout(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  double rate_ = 0.0;
  json::value seed_;
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
  json::object unapplied_;
};

}  // namespace lamina::layers
