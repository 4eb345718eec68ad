// RBM: a restricted Boltzmann machine with binary (Bernoulli) hidden and visible units, for greedy
// layer-wise unsupervised pretraining of deep sigmoid networks (Hinton, Osindero & Teh 2006;
// Hinton, "A practical guide to training RBMs", 2010).
//
// As a layer it is a sigmoid Dense layer: y = sigmoid(x W + hidden_bias), so a stack of pretrained
// RBMs is a deep sigmoid MLP that fine-tunes with fit() like any other model. Its weights, in
// order: kernel (visible, units), hidden_bias (units), visible_bias (visible) — the last is used only
// by reconstructions and is never trained by backpropagation.
//
// With "pretrain": true, every call in training mode (Layer::call(x, true, seed)) also takes one
// step of contrastive divergence CD-k on the batch, with mean-field updates (probabilities instead
// of binary samples, the usual choice for grey-level pixels):
//   h0 = sigmoid(v0 W + c);   k times: v = sigmoid(h Wᵀ + b), h = sigmoid(v W + c)
//   W += lr (v0ᵀ h0 − vᵀ h) / N;   b += lr Σ(v0 − v) / N;   c += lr Σ(h0 − h) / N
// In that mode the weights are not trainable by optimizers, so only CD changes them.
//
// Config: units (required), pretrain (false), learning_rate (0.1, CD's step), cd_steps (1),
// kernel_initializer (RandomNormal stddev 0.01, as the guide advises), hidden_bias_initializer and
// visible_bias_initializer (zeros).
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <boost/json.hpp>

namespace {

namespace sdk = lamina::sdk;
namespace ops = lamina::sdk::ops;
namespace json = boost::json;

json::value read_initializer(const sdk::Config& config, const char* key, json::value fallback) {
  if (!config.has(key)) return fallback;
  const json::value& v = config.object().at(key);
  if (!v.is_string() && !v.is_object())
    config.fail(
        std::string("config key '") + key +
        "' must be an initializer name such as \"zeros\" or a {\"class_name\": ..., \"config\": ...} object");
  return v;
}

class RBM final : public sdk::Layer {
 public:
  explicit RBM(const std::string& config_json) {
    sdk::Config config(config_json, "RBM");
    label_ = config.name().empty() ? "RBM" : "RBM '" + config.name() + "'";
    if (!config.has("units"))
      config.fail("config key 'units' is missing; give the number of hidden units, e.g. 256");
    units_ = config.require_int("units");
    if (units_ < 1)
      config.fail("config key 'units' must be a positive integer, got " + std::to_string(units_));
    pretrain_ = config.get_bool("pretrain", false);
    learning_rate_ = config.get_float("learning_rate", 0.1);
    if (!(learning_rate_ > 0)) config.fail("config key 'learning_rate' must be positive");
    cd_steps_ = config.get_int("cd_steps", 1);
    if (cd_steps_ < 1 || cd_steps_ > 100) config.fail("config key 'cd_steps' must lie in 1..100");
    kernel_initializer_ = read_initializer(
        config, "kernel_initializer",
        json::object{{"class_name", "RandomNormal"}, {"config", {{"mean", 0.0}, {"stddev", 0.01}}}});
    const json::object zeros{{"class_name", "Zeros"}, {"config", json::object{}}};
    hidden_bias_initializer_ = read_initializer(config, "hidden_bias_initializer", zeros);
    visible_bias_initializer_ = read_initializer(config, "visible_bias_initializer", zeros);
  }

  std::string get_config() const override {
    return sdk::to_json({{"units", units_},
                         {"pretrain", pretrain_},
                         {"learning_rate", learning_rate_},
                         {"cd_steps", cd_steps_},
                         {"kernel_initializer", kernel_initializer_},
                         {"hidden_bias_initializer", hidden_bias_initializer_},
                         {"visible_bias_initializer", visible_bias_initializer_}});
  }

  sdk::Shape build(sdk::LayerBuilder& builder, const sdk::Shape& input_shape) override {
    if (input_shape.size() != 1 || input_shape[0] < 1)
      throw sdk::Error(label_ + ": expects one axis of visible units per sample, got " +
                       std::to_string(input_shape.size()) + " axes; put a Flatten layer before it");
    int64_t visible = input_shape[0];
    builder.add_weight("kernel", {visible, units_}, json::serialize(kernel_initializer_), !pretrain_);
    builder.add_weight("hidden_bias", {units_}, json::serialize(hidden_bias_initializer_), !pretrain_);
    builder.add_weight("visible_bias", {visible}, json::serialize(visible_bias_initializer_), false);
    return {units_};
  }

  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& v0) override {
    if (weights.size() != 3)
      throw sdk::Error(label_ + ": expected 3 weights, got " + std::to_string(weights.size()));
    const sdk::Tensor &kernel = weights[0], &hidden_bias = weights[1], &visible_bias = weights[2];
    sdk::Tensor h0 = ops::matmul_bias(v0, kernel, hidden_bias, "sigmoid");
    if (!(pretrain_ && context.training)) return h0;

    sdk::Tensor v = v0, h = h0;
    for (int64_t step = 0; step < cd_steps_; ++step) {
      v = ops::matmul_bias(h, kernel, visible_bias, "sigmoid", false, true);  // h Wᵀ + b
      h = ops::matmul_bias(v, kernel, hidden_bias, "sigmoid");
    }
    double rate = learning_rate_ / double(v0.shape()[0]);
    sdk::Tensor positive = ops::matmul(v0, h0, true, false);  // v0ᵀ h0: (visible, units)
    sdk::Tensor negative = ops::matmul(v, h, true, false);
    ops::assign(kernel, ops::add(kernel, ops::scale(ops::sub(positive, negative), rate)));
    // column sums, shaped (n,) like the biases
    ops::assign(visible_bias,
                ops::add(visible_bias, ops::scale(ops::reduce_sum(ops::sub(v0, v), {0}), rate)));
    ops::assign(hidden_bias, ops::add(hidden_bias, ops::scale(ops::reduce_sum(ops::sub(h0, h), {0}), rate)));
    return h0;
  }

 private:
  std::string label_;
  int64_t units_ = 0;
  bool pretrain_ = false;
  double learning_rate_ = 0.1;
  int64_t cd_steps_ = 1;
  json::value kernel_initializer_, hidden_bias_initializer_, visible_bias_initializer_;
};

void register_all(const lamina_host* host) {
  sdk::register_layer<RBM>(host, "RBM");
}

}  // namespace

LAMINA_PLUGIN("pretraining", "0.1.0", LAMINA_KIND_LAYER,
              "RBM: restricted Boltzmann machine layer, pretrained by contrastive divergence", register_all,
              LAMINA_ALWAYS_USABLE)
