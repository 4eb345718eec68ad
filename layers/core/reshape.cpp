#include "core_layers.hpp"

namespace lamina::layers {

Reshape::Reshape(const std::string& config_json) {
  Config config(config_json, "Reshape");
  label_ = layer_label("Reshape", config);
  if (!config.has("target_shape"))
    config.fail("config key 'target_shape' is missing; give the shape per sample, e.g. [28, 28, 1]");
  const json::value& v = config.object().at("target_shape");
  if (!v.is_array() || v.as_array().empty() || v.as_array().size() > LAMINA_MAX_DIMS - 1)
    config.fail("config key 'target_shape' must be a list of 1 to " + std::to_string(LAMINA_MAX_DIMS - 1) +
                " integers, got " + json::serialize(v));
  int unknown = 0;
  for (const json::value& d : v.as_array()) {
    int64_t n = d.is_int64() ? d.as_int64() : d.is_uint64() ? int64_t(d.as_uint64()) : 0;
    if (n == -1) ++unknown;
    if ((n < 1 && n != -1) || unknown > 1)
      config.fail("config key 'target_shape' must hold positive integers and at most one -1, got " +
                  json::serialize(v));
    target_.push_back(n);
  }
}

std::string Reshape::get_config() const {
  json::array shape;
  for (int64_t d : target_) shape.push_back(d);
  return sdk::to_json({{"target_shape", shape}});
}

Shape Reshape::resolve(const Shape& input_shape) const {
  int64_t in = 1;
  for (int64_t d : input_shape) in *= d;
  int64_t known = 1;
  for (int64_t d : target_)
    if (d != -1) known *= d;
  Shape out = target_;
  auto unknown = std::find(out.begin(), out.end(), int64_t(-1));
  bool fits = unknown == out.end() ? known == in : in % known == 0;
  if (!fits)
    throw sdk::Error(label_ + ": cannot reshape input " + shape_text(input_shape) + " (" +
                     std::to_string(in) + " elements per sample) to target_shape " + shape_text(target_) +
                     "; the target must hold the same number of elements" +
                     (unknown == out.end() ? " (or use -1 for one axis to infer it)" : ""));
  if (unknown != out.end()) *unknown = in / known;
  return out;
}

Shape Reshape::build(sdk::LayerBuilder&, const Shape& input_shape) {
  return resolve(input_shape);
}

sdk::Tensor Reshape::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                          const sdk::Tensor& input) {
  Shape shape = input.shape();
  Shape out = resolve(Shape(shape.begin() + (shape.empty() ? 0 : 1), shape.end()));
  out.insert(out.begin(), shape.empty() ? 1 : shape[0]);
  return sdk::ops::reshape(input, out);
}

}  // namespace lamina::layers
