// Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023), as Keras 3 has it:
//   direction = sign(β₁·m + (1 − β₁)·g)
//   p −= learning_rate · direction
//   m  = β₂·m + (1 − β₂)·g
// One slot, "momentum" (Keras 3's name), saved with the model. Config keys as Keras 3's Lion:
// learning_rate (0.001), beta_1 (0.9), beta_2 (0.99). A key the class does not know — a misspelt
// "betta_1" — is an error, which the SDK makes the default for every optimizer: the keys get_config()
// writes are the keys it takes, with Keras' common optimizer keys (sdk::kKerasOptimizerKeys).
//
// The direction runs as an op this plugin defines, "lion.direction": an optimizer plugin registers
// ops as a layer plugin does. It has its own kernel on onednn (one pass, no temporaries) and on every
// other backend runs compose(), three ops of lamina's.
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <cmath>

namespace {

namespace sdk = lamina::sdk;
namespace ops = lamina::sdk::ops;

// lion.direction(m, g; beta_1) = sign(beta_1·m + (1 − beta_1)·g), shaped like m.
struct DirectionOp {
  static constexpr const char* name = "lion.direction";
  static constexpr int inputs = 2;
  static sdk::Tensor compose(const std::vector<sdk::Tensor>& in, const sdk::AttrReader& attrs) {
    const double beta_1 = attrs.get_float("beta_1", 0.9);
    return ops::sign(ops::add(ops::scale(in[0], beta_1), ops::scale(in[1], 1.0 - beta_1)));
  }
};

// onednn keeps tensors in host memory: the views hold host pointers.
LAMINA_KERNEL(direction_kernel) {
  const double beta_1 = args.attrs.get_float("beta_1", 0.9);
  const float* m = sdk::host_data(args.inputs[0]);
  const float* g = sdk::host_data(args.inputs[1]);
  float* y = sdk::host_data(args.outputs[0]);
  const int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) {
    // in double, as scale computes, so that both paths round alike
    const float v = float(float(beta_1 * double(m[i])) + float((1.0 - beta_1) * double(g[i])));
    y[i] = v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v;
  }
}

bool g_have_op = false;  // false on a core older than plugin ops: compose directly

class Lion final : public sdk::Optimizer {
 public:
  explicit Lion(const std::string& config_json) {
    sdk::Config config(config_json, "Lion");
    name_ = config.name().empty() ? "lion" : config.name();
    learning_rate_ = config.get_float("learning_rate", 0.001);
    beta_1_ = config.get_float("beta_1", 0.9);
    beta_2_ = config.get_float("beta_2", 0.99);
    if (!(learning_rate_ >= 0.0)) config.fail("config key 'learning_rate' must be 0 or more");
    if (!(beta_1_ >= 0.0 && beta_1_ <= 1.0)) config.fail("config key 'beta_1' must be in [0, 1]");
    if (!(beta_2_ >= 0.0 && beta_2_ <= 1.0)) config.fail("config key 'beta_2' must be in [0, 1]");
  }
  // Also the keys Lion takes (sdk::Optimizer::config_keys): name, learning_rate, beta_1, beta_2.
  std::string get_config() const override {
    return sdk::to_json(
        {{"name", name_}, {"learning_rate", learning_rate_}, {"beta_1", beta_1_}, {"beta_2", beta_2_}});
  }
  std::vector<std::string> slot_names() const override { return {"momentum"}; }
  void apply(const sdk::Tensor& p, const sdk::Tensor& g, const std::vector<sdk::Tensor>& slots,
             int64_t) override {
    const sdk::Tensor& m = slots.at(0);
    sdk::Attrs attrs;
    attrs.set("beta_1", beta_1_);
    sdk::Tensor direction;
    if (g_have_op)
      direction = ops::run1(DirectionOp::name, {&m, &g}, std::move(attrs));
    else
      direction = DirectionOp::compose({m, g}, sdk::AttrReader(attrs.c()));
    ops::assign(p, ops::sub(p, ops::scale(direction, learning_rate_)));
    ops::assign(m, ops::add(ops::scale(m, beta_2_), ops::scale(g, 1.0 - beta_2_)));
  }
  double learning_rate() const override { return learning_rate_; }
  void set_learning_rate(double value) override { learning_rate_ = value; }

 private:
  std::string name_;
  double learning_rate_, beta_1_, beta_2_;
};

void register_all(const lamina_host* host) {
  g_have_op = sdk::register_op<DirectionOp>(host, {{"onednn", &direction_kernel}});
  sdk::register_optimizer<Lion>(host, "Lion");
}

}  // namespace

LAMINA_PLUGIN("lion", "1.0.0", LAMINA_KIND_OPTIMIZER, "Lion optimizer: sign of the interpolated momentum",
              register_all, LAMINA_ALWAYS_USABLE)
