// ScaledTanh: y = alpha * tanh(x), with one trainable alpha per feature (the last axis).
// The forward pass is written with lamina's ops, so lamina differentiates it: no backward code,
// and it runs on every backend. Rename the class and the plugin, and write your own layer here.
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

namespace {

namespace sdk = lamina::sdk;

class ScaledTanh final : public sdk::Layer {
 public:
  // The layer's Keras config as JSON text. sdk::Config's errors name the layer and the key.
  explicit ScaledTanh(const std::string& config_json) {
    sdk::Config config(config_json, "ScaledTanh");
    alpha_initializer_ = config.get_json("alpha_initializer", "\"ones\"");
  }

  // This layer's own keys (lamina adds name, trainable and dtype). What get_config returns is
  // saved with the model and handed back to the constructor when the model is loaded.
  std::string get_config() const override {
    boost::json::object o;
    o["alpha_initializer"] = boost::json::parse(alpha_initializer_);
    return sdk::to_json(o);
  }

  // Declares the weights and returns the output shape (both without the batch dimension).
  sdk::Shape build(sdk::LayerBuilder& builder, const sdk::Shape& input_shape) override {
    if (input_shape.empty()) throw sdk::Error("ScaledTanh: needs at least one feature axis");
    builder.add_weight("alpha", {input_shape.back()}, alpha_initializer_);
    return input_shape;
  }

  // weights[i] is the i-th weight declared in build(); the input has the batch dimension first.
  sdk::Tensor call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& x) override {
    return sdk::ops::mul(sdk::ops::tanh(x), weights[0]);  // alpha broadcasts over the batch
  }

 private:
  std::string alpha_initializer_;  // a Keras initializer, as JSON: "ones", {"class_name": ...}
};

void register_all(const lamina_host* host) {
  sdk::register_layer<ScaledTanh>(host, "ScaledTanh");
}

}  // namespace

// Plugin name (as in the manifest), version, kind, description, registration, usability check.
LAMINA_PLUGIN("my_plugin", "1.0.0", LAMINA_KIND_LAYER, "ScaledTanh: alpha * tanh(x)", register_all,
              LAMINA_ALWAYS_USABLE)
