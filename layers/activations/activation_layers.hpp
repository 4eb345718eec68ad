// Keras' activation layers: ReLU, LeakyReLU, ELU, PReLU (trainable slopes) and Softmax(axis),
// composed of ops so autograd differentiates them.
#pragma once

#include "../common/keras_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lamina::layers {

// The weightless ones share their plumbing; only the function differs.
class WeightlessActivation : public sdk::Layer {
 public:
  Shape build(sdk::LayerBuilder&, const Shape& input_shape) override { return input_shape; }

 protected:
  std::string label_;
};

// max(x, 0) with Keras' max_value and negative_slope: x < 0 gives negative_slope·x, x ≥ max_value
// gives max_value. (threshold must be 0.)
class ReLU final : public WeightlessActivation {
 public:
  explicit ReLU(const std::string& config_json);
  std::string get_config() const override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::optional<double> max_value_;
  double negative_slope_ = 0.0;
};

// x for x ≥ 0, negative_slope·x below (Keras 3 `negative_slope`, tf_keras `alpha`).
class LeakyReLU final : public WeightlessActivation {
 public:
  explicit LeakyReLU(const std::string& config_json);
  std::string get_config() const override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  double negative_slope_ = 0.3;
  const char* key_ = "negative_slope";  // as the config spelt it
};

// x for x > 0, alpha·(e^x − 1) below.
class ELU final : public WeightlessActivation {
 public:
  explicit ELU(const std::string& config_json);
  std::string get_config() const override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  double alpha_ = 1.0;
};

// softmax over `axis` (any axis but the batch's).
class Softmax final : public WeightlessActivation {
 public:
  explicit Softmax(const std::string& config_json);
  std::string get_config() const override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  int64_t axis_ = -1;
};

// x for x ≥ 0, alpha·x below, with a trainable alpha per element of the sample, shared (size 1)
// along `shared_axes` (numbered from 1, the batch being 0).
class PReLU final : public sdk::Layer {
 public:
  explicit PReLU(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  json::value alpha_initializer_;
  std::vector<int64_t> shared_axes_;
  json::object regularizers_;
};

}  // namespace lamina::layers
