#include "recurrent.hpp"

#include <algorithm>

namespace lamina::layers {

namespace ops = sdk::ops;

namespace {

std::string without_prefix(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// A wrapped layer's config ({"class_name": "LSTM", "config": {...}}) as a RecurrentCore; `key` names
// it in messages ("layer", "backward_layer").
std::unique_ptr<RecurrentCore> wrapped(const Config& config, const char* key, const json::value& v,
                                       const json::object* override_config = nullptr) {
  if (!v.is_object() || !v.as_object().contains("class_name") || !v.as_object().at("class_name").is_string())
    config.fail("config key '" + std::string(key) +
                "' must be a layer: {\"class_name\": \"LSTM\" or \"GRU\", \"config\": {...}}, got " +
                value_text(v));
  const std::string cls(v.as_object().at("class_name").as_string());
  json::object inner;
  if (auto* c = v.as_object().if_contains("config"); c && c->is_object()) inner = c->as_object();
  if (override_config)
    for (const auto& kv : *override_config) inner[kv.key()] = kv.value();
  RecurrentCore::Kind kind;
  if (cls == "LSTM")
    kind = RecurrentCore::Kind::lstm;
  else if (cls == "GRU")
    kind = RecurrentCore::Kind::gru;
  else
    config.fail("config key '" + std::string(key) + "' is a " + cls +
                "; lamina's Bidirectional wraps LSTM and GRU layers only");
  try {
    return std::make_unique<RecurrentCore>(json::serialize(inner), kind);
  } catch (const sdk::Error& e) {
    config.fail("config key '" + std::string(key) + "': " + e.what());
  }
}

}  // namespace

Bidirectional::Bidirectional(const std::string& config_json) {
  Config config(config_json, "Bidirectional");
  label_ = layer_label("Bidirectional", config);
  if (!config.has("layer"))
    config.fail(
        "config key 'layer' is missing; give the recurrent layer to run both ways, e.g. "
        "{\"class_name\": \"LSTM\", \"config\": {\"units\": 16}}");
  if (auto* m = config.object().if_contains("merge_mode"); m && m->is_null())
    config.fail(
        "config key 'merge_mode' is null, but a Bidirectional that returns both directions as two outputs "
        "is not supported; use \"concat\", \"sum\", \"mul\" or \"ave\"");
  merge_mode_ = config.get_choice("merge_mode", "concat", {"concat", "sum", "mul", "ave"});
  layer_json_ = config.object().at("layer");
  forward_ = wrapped(config, "layer", layer_json_);
  // Keras names the sublayers forward_<name> and backward_<name> (unnamed: the class's name).
  std::string inner = forward_->name();
  if (inner.empty()) inner = std::string(forward_->class_name()) == "LSTM" ? "lstm" : "gru";
  const std::string base = without_prefix(inner, "forward_");
  forward_name_ = "forward_" + base;
  if (config.has("backward_layer")) {
    backward_layer_json_ = config.object().at("backward_layer");
    backward_ = wrapped(config, "backward_layer", backward_layer_json_);
    backward_name_ =
        "backward_" + without_prefix(backward_->name().empty() ? base : backward_->name(), "backward_");
    if (backward_->go_backwards() == forward_->go_backwards())
      config.fail("config key 'backward_layer' must run the other way from 'layer' (go_backwards " +
                  std::string(forward_->go_backwards() ? "false" : "true") + ")");
    if (backward_->return_sequences() != forward_->return_sequences())
      config.fail("config keys 'layer' and 'backward_layer' must agree on return_sequences");
  } else {
    backward_layer_json_ = nullptr;
    // Keras: a copy of the layer running the other way.
    json::object flip{{"go_backwards", !forward_->go_backwards()}};
    backward_ = wrapped(config, "layer", layer_json_, &flip);
    backward_name_ = "backward_" + base;
  }
}

std::string Bidirectional::get_config() const {
  json::object o{{"merge_mode", merge_mode_}, {"layer", layer_json_}};
  if (!backward_layer_json_.is_null()) o["backward_layer"] = backward_layer_json_;
  return sdk::to_json(o);
}

Shape Bidirectional::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  Shape out = forward_->output_shape(input_shape);
  backward_->output_shape(input_shape);
  if (forward_->units() != backward_->units() && merge_mode_ != "concat")
    throw sdk::Error(label_ + ": merge_mode '" + merge_mode_ +
                     "' needs both directions to have the same units, got " +
                     std::to_string(forward_->units()) + " and " + std::to_string(backward_->units()));
  forward_->declare(builder, forward_name_ + "/", input_shape[1]);
  backward_->declare(builder, backward_name_ + "/", input_shape[1]);
  if (merge_mode_ == "concat") out.back() = forward_->units() + backward_->units();
  return out;
}

sdk::Tensor Bidirectional::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                                const sdk::Tensor& input) {
  std::vector<sdk::Tensor> fs = forward_->run(weights, 0, input);
  std::vector<sdk::Tensor> bs = backward_->run(weights, forward_->weight_count(), input);
  // As Keras: the backward layer's sequence is flipped back into the order of time before the merge.
  sdk::Tensor y = forward_->output(fs), y_reversed = backward_->output(bs, true);
  if (merge_mode_ == "concat") return ops::concat({y, y_reversed}, -1);
  if (merge_mode_ == "sum") return ops::add(y, y_reversed);
  if (merge_mode_ == "mul") return ops::mul(y, y_reversed);
  return ops::scale(ops::add(y, y_reversed), 0.5);
}

}  // namespace lamina::layers
