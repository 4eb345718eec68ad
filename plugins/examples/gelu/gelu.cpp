// GELU, the Gaussian error linear unit, in its tanh form (Hendrycks & Gimpel; Keras'
// gelu(approximate=True)):  y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// Seven ops, no kernel and no gradient code: lamina differentiates the composition and every
// backend runs it.
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <cmath>

namespace {

namespace sdk = lamina::sdk;
namespace ops = lamina::sdk::ops;

class GELU final : public sdk::Layer {
 public:
  explicit GELU(const std::string& config_json) {
    sdk::Config config(config_json, "GELU");
    // The exact form needs erf, which lamina's op set does not have (docs/ops.md).
    if (!config.get_bool("approximate", true))
      config.fail(
          "config key 'approximate' is false, but only the tanh approximation is provided; set it to true");
  }
  std::string get_config() const override { return sdk::to_json({{"approximate", true}}); }
  sdk::Shape build(sdk::LayerBuilder&, const sdk::Shape& input_shape) override { return input_shape; }
  sdk::Tensor call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) override {
    const double c = std::sqrt(2.0 / M_PI);
    sdk::Tensor cube = ops::mul(ops::square(x), x);
    sdk::Tensor inner = ops::scale(ops::add(x, ops::scale(cube, 0.044715)), c);
    sdk::Tensor gate = ops::scale(ops::tanh(inner), 0.5, 0.5);  // (1 + tanh) / 2
    return ops::mul(x, gate);
  }
};

void register_all(const lamina_host* host) {
  sdk::register_layer<GELU>(host, "GELU");
}

}  // namespace

LAMINA_PLUGIN("gelu", "1.0.0", LAMINA_KIND_LAYER, "GELU activation layer (tanh form), composed of ops",
              register_all, LAMINA_ALWAYS_USABLE)
