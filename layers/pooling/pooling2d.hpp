// Keras MaxPooling2D and AveragePooling2D over NHWC inputs. They share every config key and the
// window arithmetic; only the op differs. GlobalMaxPooling2D and GlobalAveragePooling2D pool each
// channel over the whole image (keepdims: as (1, 1, C) rather than (C,)).
#pragma once

#include "../common/keras_layer.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lamina::layers {

class Pooling2D : public sdk::Layer {
 public:
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  enum class Kind { max, average };
  Pooling2D(const std::string& config_json, const char* class_name, Kind kind);

 private:
  Kind kind_;
  std::string label_;
  std::array<int64_t, 2> pool_size_{2, 2};
  std::array<int64_t, 2> strides_{2, 2};
  std::string padding_;
};

class MaxPooling2D final : public Pooling2D {
 public:
  explicit MaxPooling2D(const std::string& config_json) : Pooling2D(config_json, "MaxPooling2D", Kind::max) {}
};

class AveragePooling2D final : public Pooling2D {
 public:
  explicit AveragePooling2D(const std::string& config_json)
      : Pooling2D(config_json, "AveragePooling2D", Kind::average) {}
};

class GlobalPooling2D : public sdk::Layer {
 public:
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  enum class Kind { max, average };
  GlobalPooling2D(const std::string& config_json, const char* class_name, Kind kind);

 private:
  Kind kind_;
  std::string label_;
  bool keepdims_ = false;
};

class GlobalMaxPooling2D final : public GlobalPooling2D {
 public:
  explicit GlobalMaxPooling2D(const std::string& config_json)
      : GlobalPooling2D(config_json, "GlobalMaxPooling2D", Kind::max) {}
};

class GlobalAveragePooling2D final : public GlobalPooling2D {
 public:
  explicit GlobalAveragePooling2D(const std::string& config_json)
      : GlobalPooling2D(config_json, "GlobalAveragePooling2D", Kind::average) {}
};

// Keras MaxPooling1D and AveragePooling1D over (steps, channels) inputs, and their global forms:
// the 2D pooling ops on a (batch, 1, steps, channels) view.
class Pooling1D : public sdk::Layer {
 public:
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  enum class Kind { max, average };
  Pooling1D(const std::string& config_json, const char* class_name, Kind kind);

 private:
  WindowAxis window(int64_t steps) const;
  Kind kind_;
  std::string label_;
  int64_t pool_size_ = 2;
  int64_t strides_ = 2;
  std::string padding_;
};

class MaxPooling1D final : public Pooling1D {
 public:
  explicit MaxPooling1D(const std::string& config_json) : Pooling1D(config_json, "MaxPooling1D", Kind::max) {}
};

class AveragePooling1D final : public Pooling1D {
 public:
  explicit AveragePooling1D(const std::string& config_json)
      : Pooling1D(config_json, "AveragePooling1D", Kind::average) {}
};

class GlobalPooling1D : public sdk::Layer {
 public:
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 protected:
  enum class Kind { max, average };
  GlobalPooling1D(const std::string& config_json, const char* class_name, Kind kind);

 private:
  Kind kind_;
  std::string label_;
  bool keepdims_ = false;
};

class GlobalMaxPooling1D final : public GlobalPooling1D {
 public:
  explicit GlobalMaxPooling1D(const std::string& config_json)
      : GlobalPooling1D(config_json, "GlobalMaxPooling1D", Kind::max) {}
};

class GlobalAveragePooling1D final : public GlobalPooling1D {
 public:
  explicit GlobalAveragePooling1D(const std::string& config_json)
      : GlobalPooling1D(config_json, "GlobalAveragePooling1D", Kind::average) {}
};

}  // namespace lamina::layers
