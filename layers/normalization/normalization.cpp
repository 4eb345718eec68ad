// What BatchNormalization and LayerNormalization share: the axis and epsilon keys, and means.
#include "normalization_layers.hpp"

#include <algorithm>

namespace lamina::layers {

AxisKey read_axis(const Config& config, const json::value& fallback) {
  AxisKey key{config.has("axis") ? config.object().at("axis") : fallback, {}};
  auto integer = [&](const json::value& v) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= uint64_t(INT64_MAX)) return int64_t(v.as_uint64());
    config.fail("config key 'axis' must be an integer or a list of integers, got " + value_text(key.raw));
  };
  if (key.raw.is_array()) {
    for (const json::value& v : key.raw.as_array()) key.axes.push_back(integer(v));
    if (key.axes.empty()) config.fail("config key 'axis' is an empty list; name at least one axis, e.g. -1");
  } else {
    key.axes.push_back(integer(key.raw));
  }
  for (int64_t a : key.axes)
    if (a == 0)
      config.fail(
          "config key 'axis' cannot be 0, the batch axis; axes count the batch as 0 (-1 is the last)");
  return key;
}

std::vector<int64_t> resolve_axes(const std::string& label, const std::vector<int64_t>& axes,
                                  const Shape& input) {
  const int64_t rank = int64_t(input.size()) + 1;  // with the batch axis
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    const int64_t p = a < 0 ? a + rank : a;
    if (p < 1 || p >= rank)
      throw sdk::Error(label + ": config key 'axis' names axis " + std::to_string(a) +
                       ", out of range for inputs of shape " + shape_text(input) + " per sample (" +
                       std::to_string(rank) + " axes with the batch axis 0: use 1.." +
                       std::to_string(rank - 1) + " or -1..-" + std::to_string(rank - 1) + ")");
    if (std::find(out.begin(), out.end(), p) != out.end())
      throw sdk::Error(label + ": config key 'axis' names axis " + std::to_string(p) + " twice");
    if (input[size_t(p - 1)] < 1)
      throw sdk::Error(label + ": the input's size along axis " + std::to_string(p) + " must be known, got " +
                       shape_text(input));
    out.push_back(p);
  }
  return out;
}

double read_epsilon(const Config& config) {
  const double epsilon = config.get_float("epsilon", 1e-3);
  if (!(epsilon >= 0.0))
    config.fail("config key 'epsilon' must be 0 or more (Keras' default is 0.001), got " +
                value_text(config.object().at("epsilon")));
  return epsilon;
}

sdk::Tensor mean_over(const sdk::Tensor& x, const Shape& axes) {
  const Shape shape = x.shape();
  int64_t n = 1;
  for (int64_t a : axes) n *= shape[size_t(a)];
  return sdk::ops::scale(sdk::ops::reduce_sum(x, axes, true), 1.0 / double(n));
}

}  // namespace lamina::layers
