// Helpers shared by the built-in layer plugins: reading the Keras config keys that several layers
// have in common (activation, initializers, regularizers, padding, data_format) with messages that
// name the layer, and the TensorFlow window arithmetic behind "valid" and "same" padding.
// Header-only and built on the SDK alone, so each plugin stays a standalone module.
#pragma once

#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

namespace lamina::layers {

namespace json = boost::json;
using sdk::Config;
using sdk::Shape;

// "Dense 'dense_1'": how messages raised after create() (build, call) name the layer.
inline std::string layer_label(const char* class_name, const Config& config) {
  std::string label = class_name;
  if (!config.name().empty()) label += " '" + config.name() + "'";
  return label;
}

inline std::string shape_text(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Numbers as people write them ("0.5", not Boost.JSON's "5E-1"), for messages.
inline std::string value_text(const json::value& v) {
  if (!v.is_double()) return json::serialize(v);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v.as_double());
  return buffer;
}

inline void warn(const std::string& message) {
  if (sdk::host_table() && sdk::host_table()->log) sdk::host_table()->log(2, message.c_str());
}

// Keras writes `"activation": null` for no activation in some versions, hence the linear fallback.
inline std::string read_activation(const Config& config, bool required) {
  if (required && !config.has("activation"))
    config.fail("config key 'activation' is missing; give an activation name such as \"relu\"");
  std::string name = config.get_string("activation", "linear");
  if (!sdk::is_activation(name))
    config.fail("config key 'activation' is '" + name + "', which lamina does not provide; use one of " +
                sdk::activation_names());
  return name;
}

// An initializer stays in its Keras JSON form (a name or a {"class_name", "config"} object): the
// core interprets it, and get_config hands back exactly what was read.
inline json::value read_initializer(const Config& config, const char* key, const char* fallback) {
  if (!config.has(key)) return json::string(fallback);
  const json::value& v = config.object().at(key);
  if (!v.is_string() && !v.is_object())
    config.fail(std::string("config key '") + key + "' must be an initializer name such as \"" + fallback +
                "\" or a {\"class_name\": ..., \"config\": ...} object, got " + value_text(v));
  return v;
}

// Regularizers and constraints stay in the layer's config as they were read (null when absent):
// the core reads them from get_config when the layer is built, checks them, and applies them in
// training (core/src/regularization.cpp), the same way for every layer.
inline json::object keep_regularizers(const Config& config, std::initializer_list<const char*> keys) {
  json::object kept;
  for (const char* key : keys) kept[key] = config.has(key) ? config.object().at(key) : json::value(nullptr);
  return kept;
}

// The keys of a layer with a kernel and a bias (Dense and the convolutions).
inline json::object keep_kernel_regularizers(const Config& config) {
  return keep_regularizers(config, {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                    "kernel_constraint", "bias_constraint"});
}

// A convolution's `filters`: required, positive.
inline int64_t read_filters(const Config& config) {
  if (!config.has("filters"))
    config.fail("config key 'filters' is missing; give the number of output channels, e.g. 32");
  const int64_t filters = config.require_int("filters");
  if (filters < 1)
    config.fail("config key 'filters' must be a positive integer, got " + std::to_string(filters));
  return filters;
}

// lamina's tensors are NHWC throughout; channels_first inputs would need transposes around each layer,
// which no layer does yet.
inline void require_channels_last(const Config& config) {
  if (config.get_choice("data_format", "channels_last", {"channels_last", "channels_first"}) !=
      "channels_last")
    config.fail(
        "data_format 'channels_first' is not supported yet; lamina runs channels_last (height, width, "
        "channels) only, so use data_format \"channels_last\"");
}

inline json::array pair_json(const std::array<int64_t, 2>& p) {
  return json::array{p[0], p[1]};
}

// A 1D layer's window key (kernel_size, strides, pool_size, dilation_rate): an integer or a list of one,
// as Keras writes them; positive.
inline int64_t get_single(const Config& config, const char* key, int64_t fallback) {
  if (!config.has(key)) return fallback;
  const json::value& v = config.object().at(key);
  const json::value* item = &v;
  if (v.is_array()) {
    if (v.as_array().size() != 1)
      config.fail(std::string("config key '") + key + "' must be an integer or a list of one, got " +
                  value_text(v));
    item = &v.as_array()[0];
  }
  int64_t n = 0;
  if (item->is_int64())
    n = item->as_int64();
  else if (item->is_uint64() && item->as_uint64() < (uint64_t(1) << 62))
    n = int64_t(item->as_uint64());
  else
    config.fail(std::string("config key '") + key + "' must be an integer or a list of one, got " +
                value_text(v));
  if (n < 1) config.fail(std::string("config key '") + key + "' must be positive, got " + value_text(v));
  return n;
}

// Sequence layers take (steps, features) per sample.
inline void require_sequence_input(const std::string& label, const Shape& input) {
  if (input.size() != 2)
    throw sdk::Error(label + ": expects inputs of shape (steps, features) per sample, got " +
                     shape_text(input) + "; add a Reshape layer before it (e.g. target_shape [28, 28])");
  for (int64_t d : input)
    if (d < 1)
      throw sdk::Error(label + ": input shape " + shape_text(input) + " must be fully known and positive");
}

// One spatial axis of a convolution or pooling window, by TensorFlow's rule that Keras follows:
// "same" gives ceil(in / stride) outputs and puts the odd padding cell after (bottom/right).
struct WindowAxis {
  int64_t out = 0;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
};

inline WindowAxis window_axis(int64_t in, int64_t window, int64_t stride, bool same) {
  WindowAxis a;
  if (same) {
    a.out = (in + stride - 1) / stride;
    int64_t total = std::max<int64_t>((a.out - 1) * stride + window - in, 0);
    a.pad_before = total / 2;
    a.pad_after = total - a.pad_before;
  } else if (in >= window) {
    a.out = (in - window) / stride + 1;
  }
  return a;
}

struct Window2D {
  int64_t out_h = 0;
  int64_t out_w = 0;
  Shape pads;  // top, bottom, left, right: the order the conv and pool ops take
};

// `what` names the window in messages ("kernel", "pool").
inline Window2D window_2d(const std::string& label, const Shape& input, const std::array<int64_t, 2>& window,
                          const std::array<int64_t, 2>& strides, bool same, const char* what) {
  WindowAxis h = window_axis(input[0], window[0], strides[0], same);
  WindowAxis w = window_axis(input[1], window[1], strides[1], same);
  if (h.out < 1 || w.out < 1)
    throw sdk::Error(
        label + ": the input's height x width " + std::to_string(input[0]) + "x" + std::to_string(input[1]) +
        " is smaller than the " + what + " " + std::to_string(window[0]) + "x" + std::to_string(window[1]) +
        " under padding \"valid\"; use padding \"same\", a smaller " + what + " or a larger input");
  return {h.out, w.out, {h.pad_before, h.pad_after, w.pad_before, w.pad_after}};
}

// Spatial layers take one (height, width, channels) image per sample.
inline void require_image_input(const std::string& label, const Shape& input) {
  if (input.size() != 3)
    throw sdk::Error(label + ": expects inputs of shape (height, width, channels) per sample, got " +
                     shape_text(input) + "; add a Reshape layer before it (e.g. target_shape [28, 28, 1])");
  for (int64_t d : input)
    if (d < 1)
      throw sdk::Error(label + ": input shape " + shape_text(input) + " must be fully known and positive");
}

}  // namespace lamina::layers
