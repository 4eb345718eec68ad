// The built-in optimizers (SGD, Adadelta, Adam, RMSprop) against their Keras 2 update rules,
// computed here in double on a problem small enough to differentiate by hand; then their configs:
// defaults, the Keras 2 `lr` alias, round trips and errors.
#include "support.hpp"

// lamina has no public accessor for a compiled optimizer's config (see the round-trip case), so
// that case reads the plugin table the core itself uses.
#include "../core/src/plugins.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <set>

using namespace lamina;
using lamina::test::error_of;

namespace {

// The problem every case trains on: Dense(1) with a bias, two inputs, a fixed batch, MSE loss.
//   x = [[1, 2], [3, −1]] (2, 2),  y = [[1], [0]] (2, 1),  parameters p = (w0, w1, b)
//   pred_n = x_n·w + b,  e_n = pred_n − y_n,  L = (1/N) Σ e_n²
//   dL/dw = (2/N) xᵀe,  dL/db = (2/N) Σ e_n
// At the start p = (0.5, −0.25, 0.1): pred = (0.1, 1.85), e = (−0.9, 1.85), g = (4.65, −3.65, 0.95).
using Params = std::array<double, 3>;
constexpr Params kStart = {0.5, -0.25, 0.1};
constexpr double kX[2][2] = {{1, 2}, {3, -1}};
constexpr double kY[2] = {1, 0};

Params gradient(const Params& p) {
  Params g{};
  for (int n = 0; n < 2; ++n) {
    double e = kX[n][0] * p[0] + kX[n][1] * p[1] + p[2] - kY[n];
    g[0] += 2.0 / 2 * kX[n][0] * e;
    g[1] += 2.0 / 2 * kX[n][1] * e;
    g[2] += 2.0 / 2 * e;
  }
  return g;
}

// One update by hand: changes p given its gradient g at step t (counting from 1).
using Update = std::function<void(Params& p, const Params& g, int t)>;

Sequential tiny_model(const OptimizerSpec& optimizer) {
  set_backend("reference");
  Sequential model;
  model.add(layers::Dense(1, {.input_dim = 2}));
  model.layer(0).set_weights({Tensor::from_vector({float(kStart[0]), float(kStart[1])}, {2, 1}),
                              Tensor::from_vector({float(kStart[2])}, {1})});
  model.compile("mean_squared_error", optimizer);
  return model;
}

// One fit step on the fixed batch; returns (w0, w1, b).
Params train_step(Model& model) {
  Tensor x =
      Tensor::from_vector({float(kX[0][0]), float(kX[0][1]), float(kX[1][0]), float(kX[1][1])}, {2, 2});
  Tensor y = Tensor::from_vector({float(kY[0]), float(kY[1])}, {2, 1});
  model.fit(x, y, {.epochs = 1, .batch_size = 2, .verbose = 0, .shuffle = false});
  std::vector<Tensor> w = model.layer(0).get_weights();
  std::vector<float> kernel = w[0].to_vector(), bias = w[1].to_vector();
  return {kernel[0], kernel[1], bias[0]};
}

// Trains `steps` steps with `optimizer` and checks every step against `update` done by hand.
void check_steps(const OptimizerSpec& optimizer, Update update, int steps = 3, double tolerance = 2e-6) {
  Sequential model = tiny_model(optimizer);
  Params expected = kStart;
  for (int t = 1; t <= steps; ++t) {
    update(expected, gradient(expected), t);
    Params got = train_step(model);
    for (int i = 0; i < 3; ++i) {
      INFO("step " << t << ", parameter " << i << ": got " << got[i] << ", expected " << expected[i]);
      CHECK(std::fabs(got[i] - expected[i]) <= tolerance);
    }
  }
  // the steps moved the parameters well beyond the tolerance, so the checks above mean something
  CHECK(std::fabs(expected[0] - kStart[0]) > 100 * tolerance);
}

// The optimizer plugin's own get_config for `spec`, as JSON.
boost::json::object plugin_config(const OptimizerSpec& spec) {
  const lamina_optimizer_class& table = Registry::get().optimizer(spec.class_name).table;
  lamina_error error{};
  void* optimizer = table.create(boost::json::serialize(spec.config).c_str(), &error);
  REQUIRE_MESSAGE(optimizer, error.message);
  boost::json::object config = boost::json::parse(table.get_config(optimizer)).as_object();
  table.destroy(optimizer);
  return config;
}

std::set<std::string> keys_of(const boost::json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o) keys.insert(std::string(kv.key()));
  return keys;
}

double number(const boost::json::object& config, const char* key) {
  return config.at(key).to_number<double>();
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Updates against Keras 2's rules

TEST_CASE("the hand-computed gradient of the test problem is the one autograd finds") {
  Params g = gradient(kStart);
  CHECK(g[0] == doctest::Approx(4.65));
  CHECK(g[1] == doctest::Approx(-3.65));
  CHECK(g[2] == doctest::Approx(0.95));
  // one plain SGD step with lr 1 moves the parameters by exactly −g
  Sequential model = tiny_model(optimizers::SGD({.learning_rate = 1.0}));
  Params p = train_step(model);
  for (int i = 0; i < 3; ++i) CHECK(p[i] == doctest::Approx(kStart[i] - g[i]).epsilon(1e-6));
}

TEST_CASE("SGD steps p −= lr·g") {
  check_steps(optimizers::SGD({.learning_rate = 0.05}), [](Params& p, const Params& g, int) {
    for (int i = 0; i < 3; ++i) p[i] -= 0.05 * g[i];
  });
}

TEST_CASE("SGD with momentum keeps a velocity v = momentum·v − lr·g and steps p += v") {
  Params v{};
  check_steps(optimizers::SGD({.learning_rate = 0.05, .momentum = 0.9}),
              [&](Params& p, const Params& g, int) {
                for (int i = 0; i < 3; ++i) {
                  v[i] = 0.9 * v[i] - 0.05 * g[i];
                  p[i] += v[i];
                }
              });
}

TEST_CASE("SGD with Nesterov momentum steps p += momentum·v − lr·g with the new velocity") {
  Params v{};
  check_steps(optimizers::SGD({.learning_rate = 0.05, .momentum = 0.9, .nesterov = true}),
              [&](Params& p, const Params& g, int) {
                for (int i = 0; i < 3; ++i) {
                  v[i] = 0.9 * v[i] - 0.05 * g[i];
                  p[i] += 0.9 * v[i] - 0.05 * g[i];
                }
              });
}

TEST_CASE("SGD with Keras 2's decay uses lr / (1 + decay·k) after k earlier steps") {
  check_steps(OptimizerSpec{"SGD", {{"learning_rate", 0.05}, {"decay", 0.5}}},
              [](Params& p, const Params& g, int t) {
                double lr = 0.05 / (1.0 + 0.5 * (t - 1));
                for (int i = 0; i < 3; ++i) p[i] -= lr * g[i];
              });
}

TEST_CASE("Adadelta with its defaults (lr 1.0, rho 0.95, epsilon 1e-7) follows Keras 2's update") {
  // a = ρa + (1−ρ)g²;  Δ = g·√(d + ε) / √(a + ε);  d = ρd + (1−ρ)Δ²;  p −= lr·Δ
  Params a{}, d{};
  check_steps(
      OptimizerSpec("Adadelta"),
      [&](Params& p, const Params& g, int) {
        const double rho = 0.95, eps = 1e-7, lr = 1.0;
        for (int i = 0; i < 3; ++i) {
          a[i] = rho * a[i] + (1 - rho) * g[i] * g[i];
          double delta = g[i] * std::sqrt(d[i] + eps) / std::sqrt(a[i] + eps);
          d[i] = rho * d[i] + (1 - rho) * delta * delta;
          p[i] -= lr * delta;
        }
      },
      3, 5e-7);
}

TEST_CASE("Adadelta with a learning rate and rho of its own scales its step") {
  Params a{}, d{};
  check_steps(optimizers::Adadelta({.learning_rate = 2.0, .rho = 0.5, .epsilon = 1e-3}),
              [&](Params& p, const Params& g, int) {
                const double rho = 0.5, eps = 1e-3, lr = 2.0;
                for (int i = 0; i < 3; ++i) {
                  a[i] = rho * a[i] + (1 - rho) * g[i] * g[i];
                  double delta = g[i] * std::sqrt(d[i] + eps) / std::sqrt(a[i] + eps);
                  d[i] = rho * d[i] + (1 - rho) * delta * delta;
                  p[i] -= lr * delta;
                }
              });
}

TEST_CASE("Adam folds the bias corrections into the step size: p −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)") {
  Params m{}, v{};
  check_steps(optimizers::Adam({.learning_rate = 0.01}), [&](Params& p, const Params& g, int t) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
    double alpha = 0.01 * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    for (int i = 0; i < 3; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
    }
  });
}

TEST_CASE("Adam with amsgrad divides by the largest v seen so far") {
  Params m{}, v{}, v_hat{};
  check_steps(
      OptimizerSpec{"Adam", {{"learning_rate", 0.2}, {"beta_2", 0.5}, {"amsgrad", true}}},
      [&](Params& p, const Params& g, int t) {
        const double b1 = 0.9, b2 = 0.5, eps = 1e-7;
        double alpha = 0.2 * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
        for (int i = 0; i < 3; ++i) {
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          v_hat[i] = std::max(v_hat[i], v[i]);
          p[i] -= alpha * m[i] / (std::sqrt(v_hat[i]) + eps);
        }
      },
      4);
}

TEST_CASE("RMSprop steps p −= lr·g / (√v + ε) with v = ρv + (1−ρ)g²") {
  Params v{};
  check_steps(optimizers::RMSprop({.learning_rate = 0.01}), [&](Params& p, const Params& g, int) {
    const double rho = 0.9, eps = 1e-7;
    for (int i = 0; i < 3; ++i) {
      v[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
      p[i] -= 0.01 * g[i] / (std::sqrt(v[i]) + eps);
    }
  });
}

TEST_CASE("RMSprop with momentum accumulates its steps: m = momentum·m + step, p −= m") {
  Params v{}, m{};
  check_steps(OptimizerSpec{"RMSprop", {{"learning_rate", 0.01}, {"momentum", 0.5}}},
              [&](Params& p, const Params& g, int) {
                const double rho = 0.9, eps = 1e-7;
                for (int i = 0; i < 3; ++i) {
                  v[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
                  m[i] = 0.5 * m[i] + 0.01 * g[i] / (std::sqrt(v[i]) + eps);
                  p[i] -= m[i];
                }
              });
}

TEST_CASE("set_learning_rate changes the rate the next step uses") {
  Sequential model = tiny_model(optimizers::SGD({.learning_rate = 0.05}));
  CHECK(model.learning_rate() == 0.05);
  model.set_learning_rate(0.5);
  CHECK(model.learning_rate() == 0.5);
  Params g = gradient(kStart);
  Params p = train_step(model);
  for (int i = 0; i < 3; ++i) CHECK(p[i] == doctest::Approx(kStart[i] - 0.5 * g[i]).epsilon(1e-6));
}

// ------------------------------------------------------------------------------------------------
// Configs

TEST_CASE("optimizer names are case-insensitive and default to Keras 2's learning rates, Adadelta's 1.0") {
  struct Case {
    const char* name;
    double learning_rate;
  };
  for (Case c : {Case{"sgd", 0.01}, Case{"SGD", 0.01}, Case{"adadelta", 1.0}, Case{"Adadelta", 1.0},
                 Case{"adam", 0.001}, Case{"rmsprop", 0.001}, Case{"RMSprop", 0.001}}) {
    CAPTURE(c.name);
    CHECK(tiny_model(OptimizerSpec(c.name)).learning_rate() == c.learning_rate);
  }
  CHECK(tiny_model(optimizers::Adadelta()).learning_rate() == 1.0);
}

TEST_CASE("Keras 2's key lr is read as the learning rate, and learning_rate wins when both are given") {
  for (const char* name : {"SGD", "Adadelta", "Adam", "RMSprop"}) {
    CAPTURE(name);
    CHECK(tiny_model(OptimizerSpec{name, {{"lr", 0.25}}}).learning_rate() == 0.25);
    CHECK(tiny_model(OptimizerSpec{name, {{"lr", 0.25}, {"learning_rate", 0.125}}}).learning_rate() == 0.125);
  }
  check_steps(OptimizerSpec{"SGD", {{"lr", 0.05}}}, [](Params& p, const Params& g, int) {
    for (int i = 0; i < 3; ++i) p[i] -= 0.05 * g[i];
  });
}

TEST_CASE("each optimizer's config has Keras' keys, its defaults, and survives get_config → create") {
  struct Case {
    OptimizerSpec spec;
    std::set<std::string> keys;
    std::vector<std::pair<const char*, double>> defaults;
  };
  std::vector<Case> cases = {
      {OptimizerSpec("SGD"),
       {"name", "learning_rate", "momentum", "nesterov"},
       {{"learning_rate", 0.01}, {"momentum", 0}}},
      {OptimizerSpec("Adadelta"),
       {"name", "learning_rate", "rho", "epsilon"},
       {{"learning_rate", 1.0}, {"rho", 0.95}, {"epsilon", 1e-7}}},
      {OptimizerSpec("Adam"),
       {"name", "learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"},
       {{"learning_rate", 0.001}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-7}}},
      {OptimizerSpec("RMSprop"),
       {"name", "learning_rate", "rho", "momentum", "epsilon", "centered"},
       {{"learning_rate", 0.001}, {"rho", 0.9}, {"momentum", 0}, {"epsilon", 1e-7}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.spec.class_name);
    boost::json::object defaults = plugin_config(c.spec);
    CHECK(keys_of(defaults) == c.keys);
    for (const auto& entry : c.defaults) {
      const auto& key = entry.first;  // not a structured binding: clang before 16 cannot capture one
      CAPTURE(key);
      CHECK(number(defaults, key) == entry.second);
    }
    CHECK(plugin_config({c.spec.class_name, defaults}) == defaults);
  }
  // non-default values, Keras 2's decay and the lr alias come back under Keras' own keys
  boost::json::object sgd =
      plugin_config({"SGD", {{"lr", 0.3}, {"momentum", 0.8}, {"nesterov", true}, {"decay", 0.1}}});
  CHECK(keys_of(sgd) == std::set<std::string>{"name", "learning_rate", "momentum", "nesterov", "decay"});
  CHECK(number(sgd, "learning_rate") == 0.3);
  CHECK(number(sgd, "momentum") == 0.8);
  CHECK(sgd.at("nesterov") == true);
  CHECK(number(sgd, "decay") == 0.1);
  CHECK(plugin_config({"SGD", sgd}) == sgd);
  boost::json::object named = plugin_config({"Adam", {{"name", "my_adam"}, {"amsgrad", true}}});
  CHECK(named.at("name") == "my_adam");
  CHECK(named.at("amsgrad") == true);
  CHECK(plugin_config({"Adam", named}) == named);
}

TEST_CASE("an unknown optimizer class is refused with the classes there are") {
  std::string message = error_of([] { tiny_model(OptimizerSpec("Adamax")); });
  CHECK(message.rfind(
            "unknown optimizer class 'Adamax'. Known optimizer classes: Adadelta, Adam, RMSprop, SGD. "
            "Plugin folders searched: ",
            0) == 0);
}

TEST_CASE("bad optimizer configs are refused, naming the optimizer and the key") {
  struct Case {
    OptimizerSpec spec;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"SGD", {{"momentum", 1.5}}}, "SGD: config key 'momentum' must be in [0, 1], got 1.5"},
      {{"SGD", {{"learning_rate", -1}}},
       "SGD: config key 'learning_rate' must be a non-negative number, got -1"},
      {{"SGD", {{"lr", "fast"}}}, "SGD: config key 'lr' must be a number, got \"fast\""},
      {{"Adam", {{"beta_1", 1.0}}}, "Adam: config key 'beta_1' must be in [0, 1), got 1"},
      {{"Adam", {{"learning_rate", {{"class_name", "ExponentialDecay"}, {"config", boost::json::object{}}}}}},
       "Adam: config key 'learning_rate' holds a learning-rate schedule, which is not "
       "supported yet; "
       "give a number"},
      {{"Adadelta", {{"name", "mine"}, {"rho", 2}}},
       "Adadelta 'mine': config key 'rho' must be in [0, 1], got 2"},
      {{"RMSprop", {{"centered", true}}},
       "RMSprop: centered RMSprop is not supported yet; use \"centered\": false"},
  };
  for (const Case& c : cases) {
    CAPTURE(boost::json::serialize(c.spec.config));
    CHECK(error_of([&] { tiny_model(c.spec); }) == c.message);
  }
}

TEST_CASE(
    "a misspelt key in a built-in optimizer's config is refused, naming the class, the key and the keys") {
  struct Case {
    OptimizerSpec spec;
    std::string message;
  };
  const std::string keras =
      "and Keras' optimizer keys 'name', 'clipnorm', 'clipvalue', 'global_clipnorm', 'use_ema', "
      "'ema_momentum', 'ema_overwrite_frequency', 'loss_scale_factor', 'gradient_accumulation_steps', "
      "'weight_decay', 'jit_compile', 'is_legacy_optimizer', 'decay'";
  std::vector<Case> cases = {
      {{"Adam", {{"betta_1", 0.9}}},
       "Adam: unknown config key 'betta_1' (did you mean 'beta_1'?); known: 'learning_rate', 'lr', 'beta_1', "
       "'beta_2', 'epsilon', 'amsgrad', " +
           keras},
      {{"SGD", {{"momentun", 0.9}}},
       "SGD: unknown config key 'momentun' (did you mean 'momentum'?); known: 'learning_rate', 'lr', "
       "'momentum', "
       "'nesterov', " +
           keras},
      {{"RMSprop", {{"learningrate", 0.1}}},
       "RMSprop: unknown config key 'learningrate' (did you mean 'learning_rate'?); known: 'learning_rate', "
       "'lr', "
       "'rho', 'momentum', 'epsilon', 'centered', " +
           keras},
      {{"Adadelta", {{"warmup", 10}}},
       "Adadelta: unknown config key 'warmup'; known: 'learning_rate', 'lr', 'rho', 'epsilon', " + keras},
  };
  for (const Case& c : cases) {
    CAPTURE(boost::json::serialize(c.spec.config));
    CHECK(error_of([&] { tiny_model(c.spec); }) == c.message);
  }
}

TEST_CASE("the optimizer configs Keras 3 and tf_keras write are read whole") {
  // model.optimizer.get_config() of Keras 3.15's Adam, with tf_keras 2.x's two extra keys
  boost::json::object adam{{"name", "adam"},
                           {"learning_rate", 0.001},
                           {"weight_decay", nullptr},
                           {"clipnorm", nullptr},
                           {"global_clipnorm", nullptr},
                           {"clipvalue", nullptr},
                           {"use_ema", false},
                           {"ema_momentum", 0.99},
                           {"ema_overwrite_frequency", nullptr},
                           {"loss_scale_factor", nullptr},
                           {"gradient_accumulation_steps", nullptr},
                           {"beta_1", 0.9},
                           {"beta_2", 0.999},
                           {"epsilon", 1e-07},
                           {"amsgrad", false},
                           {"jit_compile", true},
                           {"is_legacy_optimizer", false}};
  CHECK(error_of([&] { tiny_model({"Adam", adam}); }).empty());
  // Keras refuses two ways of clipping at once, and so does lamina
  CHECK(error_of([] {
          tiny_model({"SGD", {{"clipnorm", 1.0}, {"clipvalue", 0.5}}});
        }) == "SGD: only one of 'clipnorm', 'clipvalue' and 'global_clipnorm' can be set, as in Keras");
}

TEST_CASE("clipvalue clips each gradient element to [-clipvalue, clipvalue] before the update, as Keras 3") {
  OptimizerSpec spec("SGD", {{"learning_rate", 0.05}, {"clipvalue", 1.0}});
  check_steps(spec, [](Params& p, const Params& g, int) {
    for (int i = 0; i < 3; ++i) p[i] -= 0.05 * std::clamp(g[i], -1.0, 1.0);
  });
  CHECK(number(plugin_config(spec), "clipvalue") == 1.0);
}

TEST_CASE("clipnorm scales each parameter's gradient to norm clipnorm at most, as Keras 3's clip_by_norm") {
  OptimizerSpec spec("SGD", {{"learning_rate", 0.05}, {"clipnorm", 2.0}});
  check_steps(spec, [](Params& p, const Params& g, int) {
    // the kernel (w0, w1) and the bias are separate parameters, each clipped by its own norm
    const double kernel_norm = std::hypot(g[0], g[1]), bias_norm = std::fabs(g[2]);
    for (int i = 0; i < 2; ++i) p[i] -= 0.05 * g[i] * 2.0 / std::max(kernel_norm, 2.0);
    p[2] -= 0.05 * g[2] * 2.0 / std::max(bias_norm, 2.0);
  });
  CHECK(number(plugin_config(spec), "clipnorm") == 2.0);
}

TEST_CASE("weight_decay shrinks each parameter by weight_decay * lr before the update, as Keras 3") {
  OptimizerSpec spec("Adam", {{"learning_rate", 0.01}, {"weight_decay", 0.1}});
  Params m{}, v{};
  check_steps(spec, [&](Params& p, const Params& g, int t) {
    const double alpha = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    for (int i = 0; i < 3; ++i) {
      p[i] -= p[i] * 0.1 * 0.01;
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      p[i] -= alpha * m[i] / (std::sqrt(v[i]) + 1e-7);
    }
  });
  CHECK(number(plugin_config(spec), "weight_decay") == 0.1);
}
