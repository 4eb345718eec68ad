// Keras merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum and Concatenate. Each takes
// a list of inputs (Add()([a, b])); shapes exclude the batch dimension.
#pragma once

#include "../common/keras_layer.hpp"

#include <string>
#include <vector>

namespace lamina::layers {

// The elementwise merges. Inputs broadcast as in Keras: an input of lower rank gains size-1 axes
// after the batch axis, then every axis is equal or 1.
class ElementwiseMerge : public sdk::MultiLayer {
 public:
  enum class Kind { add, subtract, multiply, average, maximum, minimum };
  ElementwiseMerge(Kind kind, const char* class_name, const std::string& config_json);
  std::string get_config() const override;
  std::vector<Shape> build(sdk::LayerBuilder& builder, const std::vector<Shape>& input_shapes) override;
  std::vector<sdk::Tensor> call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                                const std::vector<sdk::Tensor>& inputs) override;

 private:
  Kind kind_;
  std::string label_;
  size_t rank_ = 0;  // of the output, without the batch axis
};

#define LAMINA_MERGE_LAYER(NAME, KIND)                                                             \
  class NAME final : public ElementwiseMerge {                                                     \
   public:                                                                                         \
    explicit NAME(const std::string& config_json) : ElementwiseMerge(Kind::KIND, #NAME, config_json) {} \
  };
LAMINA_MERGE_LAYER(Add, add)
LAMINA_MERGE_LAYER(Subtract, subtract)
LAMINA_MERGE_LAYER(Multiply, multiply)
LAMINA_MERGE_LAYER(Average, average)
LAMINA_MERGE_LAYER(Maximum, maximum)
LAMINA_MERGE_LAYER(Minimum, minimum)
#undef LAMINA_MERGE_LAYER

// Joins its inputs along `axis` (Keras counts the batch axis as 0; -1, the default, is the last).
class Concatenate final : public sdk::MultiLayer {
 public:
  explicit Concatenate(const std::string& config_json);
  std::string get_config() const override;
  std::vector<Shape> build(sdk::LayerBuilder& builder, const std::vector<Shape>& input_shapes) override;
  std::vector<sdk::Tensor> call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                                const std::vector<sdk::Tensor>& inputs) override;

 private:
  std::string label_;
  int64_t axis_ = -1;
};

}  // namespace lamina::layers
