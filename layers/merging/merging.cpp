#include "merging_layers.hpp"

namespace lamina::layers {

namespace {

std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string s;
  for (const Shape& x : shapes) {
    std::string t = "(None";
    for (int64_t d : x) t += ", " + std::to_string(d);
    s += (s.empty() ? "" : ", ") + t + ")";
  }
  return s;
}

void need_inputs(const std::string& label, const std::vector<Shape>& shapes, size_t at_least) {
  if (shapes.size() < at_least)
    throw sdk::Error(label + ": a merge layer is called on a list of at least " + std::to_string(at_least) +
                     " inputs, got " + std::to_string(shapes.size()));
}

// x with size-1 axes inserted after the batch axis until it has `rank` axes besides the batch.
sdk::Tensor to_rank(const sdk::Tensor& x, size_t rank) {
  Shape s = x.shape();
  if (s.size() >= rank + 1) return x;
  Shape out{s[0]};
  out.insert(out.end(), rank + 1 - s.size(), 1);
  out.insert(out.end(), s.begin() + 1, s.end());
  return sdk::ops::reshape(x, out);
}

}  // namespace

ElementwiseMerge::ElementwiseMerge(Kind kind, const char* class_name, const std::string& config_json)
    : kind_(kind) {
  Config config(config_json, class_name);
  label_ = layer_label(class_name, config);
}

std::string ElementwiseMerge::get_config() const { return "{}"; }

std::vector<Shape> ElementwiseMerge::build(sdk::LayerBuilder&, const std::vector<Shape>& shapes) {
  need_inputs(label_, shapes, kind_ == Kind::subtract ? 2 : 1);
  if (kind_ == Kind::subtract && shapes.size() != 2)
    throw sdk::Error(label_ + ": Subtract takes exactly 2 inputs (a - b), got " + std::to_string(shapes.size()));
  rank_ = 0;
  for (const Shape& s : shapes) rank_ = std::max(rank_, s.size());
  Shape out(rank_, 1);
  for (const Shape& s : shapes) {
    const size_t lead = rank_ - s.size();  // Keras inserts the missing axes after the batch axis
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[lead + i];
      if (o == 1) o = s[i];
      else if (s[i] != 1 && s[i] != o)
        throw sdk::Error(label_ + ": inputs of shapes " + shapes_text(shapes) +
                         " do not broadcast: dimension " + std::to_string(lead + i + 1) + " is " + std::to_string(o) +
                         " in one and " + std::to_string(s[i]) + " in another (each must be equal or 1)");
    }
  }
  return {out};
}

std::vector<sdk::Tensor> ElementwiseMerge::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                                                const std::vector<sdk::Tensor>& inputs) {
  using namespace sdk::ops;
  sdk::Tensor y = to_rank(inputs[0], rank_);
  for (size_t i = 1; i < inputs.size(); ++i) {
    const sdk::Tensor x = to_rank(inputs[i], rank_);
    switch (kind_) {
      case Kind::add:
      case Kind::average: y = add(y, x); break;
      case Kind::subtract: y = sub(y, x); break;
      case Kind::multiply: y = mul(y, x); break;
      case Kind::maximum:
        y = maximum(y, x);
        break;  // on a tie the gradient goes to the earlier input
      case Kind::minimum:
        y = minimum(y, x);
        break;
    }
  }
  if (kind_ == Kind::average && inputs.size() > 1) y = scale(y, 1.0 / double(inputs.size()));
  return {y};
}

Concatenate::Concatenate(const std::string& config_json) {
  Config config(config_json, "Concatenate");
  label_ = layer_label("Concatenate", config);
  axis_ = config.get_int("axis", -1);
  if (axis_ == 0) config.fail("config key 'axis' is 0, the batch axis; concatenate along another axis");
}

std::string Concatenate::get_config() const { return sdk::to_json({{"axis", axis_}}); }

std::vector<Shape> Concatenate::build(sdk::LayerBuilder&, const std::vector<Shape>& shapes) {
  need_inputs(label_, shapes, 1);
  const int64_t rank = int64_t(shapes[0].size()) + 1;  // with the batch axis
  const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  if (axis < 1 || axis >= rank)
    throw sdk::Error(label_ + ": config key 'axis' is " + std::to_string(axis_) + ", out of range for inputs of " +
                     std::to_string(rank) + " axes (batch included)");
  Shape out = shapes[0];
  out[size_t(axis - 1)] = 0;
  for (const Shape& s : shapes) {
    bool fits = s.size() == shapes[0].size();
    for (size_t i = 0; fits && i < s.size(); ++i) fits = int64_t(i) == axis - 1 || s[i] == shapes[0][i];
    if (!fits)
      throw sdk::Error(label_ + ": inputs of shapes " + shapes_text(shapes) + " cannot be joined along axis " +
                       std::to_string(axis_) + "; every other dimension must be the same");
    out[size_t(axis - 1)] += s[size_t(axis - 1)];
  }
  axis_ = axis_ < 0 ? axis_ : axis;
  return {out};
}

std::vector<sdk::Tensor> Concatenate::call(const sdk::CallContext&, const std::vector<sdk::Tensor>&,
                                           const std::vector<sdk::Tensor>& inputs) {
  if (inputs.size() == 1) return {inputs[0]};
  return {sdk::ops::concat(inputs, axis_)};
}

}  // namespace lamina::layers
