// Keras-style constructors for the built-in layers. They describe a layer (class name and Keras
// config); the code lives in plugins, found by class name when the layer is added to a Sequential
// model or first called on a symbolic tensor (Dense(10)(x), the functional API).
#pragma once

#include <lamina/model.hpp>

#include <array>
#include <optional>
#include <string>

namespace lamina::layers {

namespace detail {
inline boost::json::array to_json_array(const Shape& s) {
  boost::json::array a;
  for (int64_t d : s) a.push_back(d);
  return a;
}
// [a, b], built step by step (a brace-initialised nested array reads differently under clang).
inline boost::json::array pair(const std::array<int64_t, 2>& p) {
  boost::json::array a;
  a.push_back(p[0]);
  a.push_back(p[1]);
  return a;
}
inline void common(boost::json::object& c, const std::string& name, const Shape& input_shape) {
  if (!name.empty()) c["name"] = name;
  if (!input_shape.empty()) c["input_shape"] = to_json_array(input_shape);
}
// Sets `key` when `value` is given (a regularizer or constraint; null means none).
inline void optional(boost::json::object& c, const char* key, const boost::json::value& value) {
  if (!value.is_null()) c[key] = value;
}
}  // namespace detail

// Keras' regularizers, in the form Keras writes them: Dense(64, {.kernel_regularizer = L2(1e-4)})
// adds 1e-4·Σw² of the kernel to the training loss (docs/regularization.md).
namespace regularizers {
inline boost::json::value L1(double l1 = 0.01) {
  return boost::json::object{{"class_name", "L1"}, {"config", {{"l1", l1}}}};
}
inline boost::json::value L2(double l2 = 0.01) {
  return boost::json::object{{"class_name", "L2"}, {"config", {{"l2", l2}}}};
}
inline boost::json::value L1L2(double l1 = 0.0, double l2 = 0.0) {
  return boost::json::object{{"class_name", "L1L2"}, {"config", {{"l1", l1}, {"l2", l2}}}};
}
}  // namespace regularizers

// Keras' weight constraints, applied after each optimizer step; `axes` are the axes the norm runs
// over (Keras' axis: 0 for a Dense kernel's inputs, {0, 1, 2} for a Conv2D kernel's window).
namespace constraints {
inline boost::json::value MaxNorm(double max_value = 2.0, const Shape& axes = {0}) {
  return boost::json::object{{"class_name", "MaxNorm"},
                             {"config", {{"max_value", max_value}, {"axis", detail::to_json_array(axes)}}}};
}
inline boost::json::value MinMaxNorm(double min_value = 0.0, double max_value = 1.0, double rate = 1.0,
                                     const Shape& axes = {0}) {
  return boost::json::object{{"class_name", "MinMaxNorm"},
                             {"config",
                              {{"min_value", min_value},
                               {"max_value", max_value},
                               {"rate", rate},
                               {"axis", detail::to_json_array(axes)}}}};
}
inline boost::json::value UnitNorm(const Shape& axes = {0}) {
  return boost::json::object{{"class_name", "UnitNorm"}, {"config", {{"axis", detail::to_json_array(axes)}}}};
}
inline boost::json::value NonNeg() {
  return boost::json::object{{"class_name", "NonNeg"}, {"config", boost::json::object{}}};
}
}  // namespace constraints

namespace detail {
// The regularizer and constraint keys of Dense, Conv2D and the like, from their options.
template <class Options>
void weight_terms(boost::json::object& c, const Options& o) {
  optional(c, "kernel_regularizer", o.kernel_regularizer);
  optional(c, "bias_regularizer", o.bias_regularizer);
  optional(c, "activity_regularizer", o.activity_regularizer);
  optional(c, "kernel_constraint", o.kernel_constraint);
  optional(c, "bias_constraint", o.bias_constraint);
}
}  // namespace detail

struct DenseOptions {
  int64_t input_dim = 0;
  Shape input_shape;
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  std::string name;
  boost::json::value kernel_regularizer = nullptr, bias_regularizer = nullptr, activity_regularizer = nullptr;
  boost::json::value kernel_constraint = nullptr, bias_constraint = nullptr;
};
// Dense(100, {.input_dim = 2, .activation = "sigmoid"})
inline LayerSpec Dense(int64_t units, const DenseOptions& o = {}) {
  boost::json::object c{{"units", units},
                        {"activation", o.activation},
                        {"use_bias", o.use_bias},
                        {"kernel_initializer", o.kernel_initializer},
                        {"bias_initializer", o.bias_initializer}};
  detail::common(c, o.name, o.input_shape);
  if (o.input_dim > 0) c["input_dim"] = o.input_dim;
  detail::weight_terms(c, o);
  return {"Dense", c};
}

struct Conv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  std::array<int64_t, 2> dilation_rate{1, 1};  // > 1 only with strides 1
  int64_t groups = 1;                          // divides filters and the input's channels
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  Shape input_shape;
  std::string name;
  boost::json::value kernel_regularizer = nullptr, bias_regularizer = nullptr, activity_regularizer = nullptr;
  boost::json::value kernel_constraint = nullptr, bias_constraint = nullptr;
};
// Conv2D(32, {5, 5}, {.activation = "relu", .input_shape = {28, 28, 1}})
inline LayerSpec Conv2D(int64_t filters, std::array<int64_t, 2> kernel_size, const Conv2DOptions& o = {}) {
  boost::json::object c{{"filters", filters},
                        {"kernel_size", {kernel_size[0], kernel_size[1]}},
                        {"strides", {o.strides[0], o.strides[1]}},
                        {"padding", o.padding},
                        {"activation", o.activation},
                        {"use_bias", o.use_bias},
                        {"kernel_initializer", o.kernel_initializer},
                        {"bias_initializer", o.bias_initializer}};
  c["dilation_rate"] = detail::pair(o.dilation_rate);
  if (o.groups != 1) c["groups"] = o.groups;
  detail::common(c, o.name, o.input_shape);
  detail::weight_terms(c, o);
  return {"Conv2D", c};
}

struct DepthwiseConv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  int64_t depth_multiplier = 1;                // output channels per input channel
  std::array<int64_t, 2> dilation_rate{1, 1};  // > 1 only with strides 1
  std::string activation = "linear";
  bool use_bias = true;
  std::string depthwise_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  Shape input_shape;
  std::string name;
};
// DepthwiseConv2D({3, 3}, {.depth_multiplier = 2, .padding = "same"}): each input channel convolved
// on its own with depth_multiplier kernels.
inline LayerSpec DepthwiseConv2D(std::array<int64_t, 2> kernel_size, const DepthwiseConv2DOptions& o = {}) {
  boost::json::object c;
  c["kernel_size"] = detail::pair(kernel_size);
  c["strides"] = detail::pair(o.strides);
  c["padding"] = o.padding;
  c["depth_multiplier"] = o.depth_multiplier;
  c["dilation_rate"] = detail::pair(o.dilation_rate);
  c["activation"] = o.activation;
  c["use_bias"] = o.use_bias;
  c["depthwise_initializer"] = o.depthwise_initializer;
  c["bias_initializer"] = o.bias_initializer;
  detail::common(c, o.name, o.input_shape);
  return {"DepthwiseConv2D", c};
}

struct SeparableConv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  int64_t depth_multiplier = 1;
  std::array<int64_t, 2> dilation_rate{1, 1};
  std::string activation = "linear";
  bool use_bias = true;
  std::string depthwise_initializer = "glorot_uniform";
  std::string pointwise_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  Shape input_shape;
  std::string name;
};
// SeparableConv2D(16, {3, 3}, {.activation = "relu"}): a depthwise convolution, then a 1x1
// convolution to `filters` channels.
inline LayerSpec SeparableConv2D(int64_t filters, std::array<int64_t, 2> kernel_size,
                                 const SeparableConv2DOptions& o = {}) {
  boost::json::object c;
  c["filters"] = filters;
  c["kernel_size"] = detail::pair(kernel_size);
  c["strides"] = detail::pair(o.strides);
  c["padding"] = o.padding;
  c["depth_multiplier"] = o.depth_multiplier;
  c["dilation_rate"] = detail::pair(o.dilation_rate);
  c["activation"] = o.activation;
  c["use_bias"] = o.use_bias;
  c["depthwise_initializer"] = o.depthwise_initializer;
  c["pointwise_initializer"] = o.pointwise_initializer;
  c["bias_initializer"] = o.bias_initializer;
  detail::common(c, o.name, o.input_shape);
  return {"SeparableConv2D", c};
}

struct Conv2DTransposeOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  // Extra rows and columns at the bottom and right, each below its stride; unset: Keras' None.
  std::optional<std::array<int64_t, 2>> output_padding;
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  Shape input_shape;
  std::string name;
};
// Conv2DTranspose(8, {3, 3}, {.strides = {2, 2}, .padding = "same", .activation = "relu"})
inline LayerSpec Conv2DTranspose(int64_t filters, std::array<int64_t, 2> kernel_size,
                                 const Conv2DTransposeOptions& o = {}) {
  boost::json::object c{{"filters", filters},
                        {"kernel_size", {kernel_size[0], kernel_size[1]}},
                        {"strides", {o.strides[0], o.strides[1]}},
                        {"padding", o.padding},
                        {"activation", o.activation},
                        {"use_bias", o.use_bias},
                        {"kernel_initializer", o.kernel_initializer},
                        {"bias_initializer", o.bias_initializer}};
  if (o.output_padding) c["output_padding"] = {(*o.output_padding)[0], (*o.output_padding)[1]};
  detail::common(c, o.name, o.input_shape);
  return {"Conv2DTranspose", c};
}

struct Pool2DOptions {
  std::optional<std::array<int64_t, 2>> strides;  // default: pool_size
  std::string padding = "valid";
  Shape input_shape;
  std::string name;
};
namespace detail {
inline LayerSpec pool(const char* cls, std::array<int64_t, 2> pool_size, const Pool2DOptions& o) {
  auto strides = o.strides.value_or(pool_size);
  boost::json::object c{{"pool_size", {pool_size[0], pool_size[1]}},
                        {"strides", {strides[0], strides[1]}},
                        {"padding", o.padding}};
  common(c, o.name, o.input_shape);
  return {cls, c};
}
}  // namespace detail
// MaxPooling2D({2, 2})
inline LayerSpec MaxPooling2D(std::array<int64_t, 2> pool_size = {2, 2}, const Pool2DOptions& o = {}) {
  return detail::pool("MaxPooling2D", pool_size, o);
}
inline LayerSpec AveragePooling2D(std::array<int64_t, 2> pool_size = {2, 2}, const Pool2DOptions& o = {}) {
  return detail::pool("AveragePooling2D", pool_size, o);
}
struct UpSampling2DOptions {
  std::string interpolation = "nearest";  // or "bilinear"
  Shape input_shape;
  std::string name;
};
// UpSampling2D({2, 2}) repeats every pixel twice along rows and columns: an autoencoder's decoder.
inline LayerSpec UpSampling2D(std::array<int64_t, 2> size = {2, 2}, const UpSampling2DOptions& o = {}) {
  boost::json::object c{{"size", {size[0], size[1]}}, {"interpolation", o.interpolation}};
  detail::common(c, o.name, o.input_shape);
  return {"UpSampling2D", c};
}

struct SimpleOptions {
  Shape input_shape;
  std::string name;
};
inline LayerSpec Flatten(const SimpleOptions& o = {}) {
  boost::json::object c;
  detail::common(c, o.name, o.input_shape);
  return {"Flatten", c};
}
inline LayerSpec Activation(const std::string& activation, const SimpleOptions& o = {}) {
  boost::json::object c{{"activation", activation}};
  detail::common(c, o.name, o.input_shape);
  return {"Activation", c};
}
inline LayerSpec Dropout(double rate, const SimpleOptions& o = {}) {
  boost::json::object c{{"rate", rate}};
  detail::common(c, o.name, o.input_shape);
  return {"Dropout", c};
}
// SpatialDropout2D(0.2) after a Conv2D drops whole feature maps (1D: whole channels of a sequence).
inline LayerSpec SpatialDropout1D(double rate, const SimpleOptions& o = {}) {
  boost::json::object c{{"rate", rate}};
  detail::common(c, o.name, o.input_shape);
  return {"SpatialDropout1D", c};
}
inline LayerSpec SpatialDropout2D(double rate, const SimpleOptions& o = {}) {
  boost::json::object c{{"rate", rate}};
  detail::common(c, o.name, o.input_shape);
  return {"SpatialDropout2D", c};
}
// Noise in training only: GaussianNoise(0.1) adds N(0, 0.1²); GaussianDropout(0.2) multiplies by
// N(1, 0.2/0.8); AlphaDropout(0.1) drops units of a SELU network keeping its mean and variance.
inline LayerSpec GaussianNoise(double stddev, const SimpleOptions& o = {}) {
  boost::json::object c{{"stddev", stddev}};
  detail::common(c, o.name, o.input_shape);
  return {"GaussianNoise", c};
}
inline LayerSpec GaussianDropout(double rate, const SimpleOptions& o = {}) {
  boost::json::object c{{"rate", rate}};
  detail::common(c, o.name, o.input_shape);
  return {"GaussianDropout", c};
}
inline LayerSpec AlphaDropout(double rate, const SimpleOptions& o = {}) {
  boost::json::object c{{"rate", rate}};
  detail::common(c, o.name, o.input_shape);
  return {"AlphaDropout", c};
}
inline LayerSpec Reshape(const Shape& target_shape, const SimpleOptions& o = {}) {
  boost::json::object c{{"target_shape", detail::to_json_array(target_shape)}};
  detail::common(c, o.name, o.input_shape);
  return {"Reshape", c};
}
// GlobalAveragePooling2D(): the mean (max) over height and width of each channel.
inline LayerSpec GlobalAveragePooling2D(const SimpleOptions& o = {}) {
  boost::json::object c;
  detail::common(c, o.name, o.input_shape);
  return {"GlobalAveragePooling2D", c};
}
inline LayerSpec GlobalMaxPooling2D(const SimpleOptions& o = {}) {
  boost::json::object c;
  detail::common(c, o.name, o.input_shape);
  return {"GlobalMaxPooling2D", c};
}
// InputLayer({28, 28, 1}): the input shape without the batch dimension.
inline LayerSpec InputLayer(const Shape& shape, const std::string& name = "") {
  boost::json::array batch_shape{nullptr};
  for (int64_t d : shape) batch_shape.push_back(d);
  boost::json::object c{{"batch_input_shape", batch_shape}};
  if (!name.empty()) c["name"] = name;
  return {"InputLayer", c};
}

// Keras' defaults. BatchNormalization({.momentum = 0.9}): axis counts the batch as 0, -1 is the last.
struct BatchNormalizationOptions {
  int64_t axis = -1;
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  std::string moving_mean_initializer = "zeros";
  std::string moving_variance_initializer = "ones";
  Shape input_shape;
  std::string name;
};
inline LayerSpec BatchNormalization(const BatchNormalizationOptions& o = {}) {
  boost::json::object c{{"axis", o.axis},
                        {"momentum", o.momentum},
                        {"epsilon", o.epsilon},
                        {"center", o.center},
                        {"scale", o.scale},
                        {"beta_initializer", o.beta_initializer},
                        {"gamma_initializer", o.gamma_initializer},
                        {"moving_mean_initializer", o.moving_mean_initializer},
                        {"moving_variance_initializer", o.moving_variance_initializer}};
  detail::common(c, o.name, o.input_shape);
  return {"BatchNormalization", c};
}

// LayerNormalization({.axis = {1, 2}}): the axes normalized over, per sample.
struct LayerNormalizationOptions {
  Shape axis{-1};
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  Shape input_shape;
  std::string name;
};
inline LayerSpec LayerNormalization(const LayerNormalizationOptions& o = {}) {
  boost::json::object c{{"axis", detail::to_json_array(o.axis)},
                        {"epsilon", o.epsilon},
                        {"center", o.center},
                        {"scale", o.scale},
                        {"beta_initializer", o.beta_initializer},
                        {"gamma_initializer", o.gamma_initializer}};
  detail::common(c, o.name, o.input_shape);
  return {"LayerNormalization", c};
}

// Merge layers, called on a list of tensors: Add()({x, y}). The elementwise ones broadcast as Keras'
// do (an input of lower rank gains size-1 axes after the batch axis).
namespace detail {
inline LayerSpec merge(const char* cls, const std::string& name) {
  boost::json::object c;
  if (!name.empty()) c["name"] = name;
  return {cls, c};
}
}  // namespace detail
inline LayerSpec Add(const std::string& name = "") {
  return detail::merge("Add", name);
}
inline LayerSpec Subtract(const std::string& name = "") {
  return detail::merge("Subtract", name);
}
inline LayerSpec Multiply(const std::string& name = "") {
  return detail::merge("Multiply", name);
}
inline LayerSpec Average(const std::string& name = "") {
  return detail::merge("Average", name);
}
inline LayerSpec Maximum(const std::string& name = "") {
  return detail::merge("Maximum", name);
}
inline LayerSpec Minimum(const std::string& name = "") {
  return detail::merge("Minimum", name);
}
// Concatenate(-1): axis counts the batch as 0; -1 is the last (channels, for images).
inline LayerSpec Concatenate(int64_t axis = -1, const std::string& name = "") {
  LayerSpec spec = detail::merge("Concatenate", name);
  spec.config["axis"] = axis;
  return spec;
}

}  // namespace lamina::layers
