// AdamW (Loshchilov & Hutter, "Decoupled weight decay regularization"), as Keras 3's AdamW:
//   p -= learning_rate * weight_decay * p            (decay, decoupled from the gradient)
//   m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2
//   p -= alpha * m / (sqrt(v) + epsilon),  alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
// Its state is two slots per parameter, "momentum" and "velocity": lamina allocates them shaped
// like the parameter, saves them in the model file and restores them on load, so training resumes
// exactly. The Adam step is lamina's adam_update op (one pass on backends that have the kernel).
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <cmath>

namespace {

namespace sdk = lamina::sdk;
namespace ops = lamina::sdk::ops;

class AdamW final : public sdk::Optimizer {
 public:
  explicit AdamW(const std::string& config_json) {
    sdk::Config config(config_json, "AdamW");
    name_ = config.get_string("name", "adamw");
    learning_rate_ = config.get_float("learning_rate", 0.001);
    weight_decay_ = config.get_float("weight_decay", 0.004);
    beta_1_ = config.get_float("beta_1", 0.9);
    beta_2_ = config.get_float("beta_2", 0.999);
    epsilon_ = config.get_float("epsilon", 1e-7);
    if (!(learning_rate_ > 0)) config.fail("config key 'learning_rate' must be positive");
    if (!(weight_decay_ >= 0)) config.fail("config key 'weight_decay' must be 0 or more");
    if (!(beta_1_ >= 0 && beta_1_ < 1)) config.fail("config key 'beta_1' must lie in [0, 1)");
    if (!(beta_2_ >= 0 && beta_2_ < 1)) config.fail("config key 'beta_2' must lie in [0, 1)");
    if (!(epsilon_ > 0)) config.fail("config key 'epsilon' must be positive");
  }
  std::string get_config() const override {
    return sdk::to_json({{"name", name_},
                         {"learning_rate", learning_rate_},
                         {"weight_decay", weight_decay_},
                         {"beta_1", beta_1_},
                         {"beta_2", beta_2_},
                         {"epsilon", epsilon_}});
  }
  std::vector<std::string> slot_names() const override { return {"momentum", "velocity"}; }
  void apply(const sdk::Tensor& parameter, const sdk::Tensor& gradient, const std::vector<sdk::Tensor>& slots,
             int64_t iteration) override {
    if (slots.size() != 2) throw sdk::Error("AdamW: expected 2 slots, got " + std::to_string(slots.size()));
    if (weight_decay_ > 0)
      ops::assign(parameter, ops::scale(parameter, 1.0 - learning_rate_ * weight_decay_));
    double t = double(iteration);
    double alpha = learning_rate_ * std::sqrt(1.0 - std::pow(beta_2_, t)) / (1.0 - std::pow(beta_1_, t));
    sdk::Attrs attrs;
    attrs.set("alpha", alpha).set("beta_1", beta_1_).set("beta_2", beta_2_).set("epsilon", epsilon_);
    ops::update("adam_update", parameter, gradient, slots, attrs);
  }
  double learning_rate() const override { return learning_rate_; }
  void set_learning_rate(double value) override { learning_rate_ = value; }

 private:
  std::string name_;
  double learning_rate_, weight_decay_, beta_1_, beta_2_, epsilon_;
};

void register_all(const lamina_host* host) {
  sdk::register_optimizer<AdamW>(host, "AdamW");
}

}  // namespace

LAMINA_PLUGIN("adamw", "1.0.0", LAMINA_KIND_OPTIMIZER, "AdamW: Adam with decoupled weight decay",
              register_all, LAMINA_ALWAYS_USABLE)
