// The plugin SDK's promises beyond loading: a plugin built against an older minor ABI keeps
// working, and a plugin can define an op with its own kernel for one backend and a composition of
// ops for every other, differentiated by the core.
#include "support.hpp"

#include <array>
#include <cmath>
#include <filesystem>

using namespace lamina;
using lamina::test::error_of;

namespace fs = std::filesystem;

namespace {

std::string fixture_folder(const std::string& situation) {
  return (fs::path(LAMINA_FIXTURE_DIR) / situation).string();
}

PluginInfo plugin_with_library(const std::string& library) {
  for (const PluginInfo& p : list_plugins())
    if (fs::path(p.path).filename() == library) return p;
  FAIL("list_plugins() has no plugin with library " << library);
  return {};
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace

TEST_CASE("a plugin built against the ABI 1.0 header loads, computes and trains on this core") {
  set_backend("reference");
  add_plugin_path(fixture_folder("abi_1_0"));
  PluginInfo p = plugin_with_library("fixture_abi_1_0.so");
  CHECK(p.abi == "1.0");  // what the plugin declares: the frozen header's version, not this core's
  CHECK(p.usable);
  CHECK(p.reason.empty());

  // Dense(1) → OldSwish, one SGD step, against the same computation in double.
  const double x0 = 0.5, x1 = -1.0, w0 = 0.8, w1 = 0.3, b = 0.1, t = 1.0, lr = 0.5;
  double z = x0 * w0 + x1 * w1 + b, s = sigmoid(z);
  double dz = 2.0 * (z * s - t) * (s + z * s * (1.0 - s));
  Sequential model;
  model.add(layers::Dense(1, {.input_dim = 2}));
  model.add(LayerSpec{"OldSwish", {}});
  model.layer(0).set_weights(
      {Tensor::from_vector({float(w0), float(w1)}, {2, 1}), Tensor::from_vector({float(b)}, {1})});
  Tensor x = Tensor::from_vector({float(x0), float(x1)}, {1, 2});
  CHECK(test::max_abs_diff(model.predict(x).to_vector(), {float(z * s)}) < 1e-6f);
  model.compile("mean_squared_error", optimizers::SGD({.learning_rate = lr}));
  model.fit(x, Tensor::from_vector({float(t)}, {1, 1}), {.epochs = 1, .batch_size = 1, .verbose = 0});
  auto w = model.layer(0).get_weights();
  CHECK(test::max_abs_diff(w[0].to_vector(), {float(w0 - lr * x0 * dz), float(w1 - lr * x1 * dz)}) < 1e-6f);
  CHECK(test::max_abs_diff(w[1].to_vector(), {float(b - lr * dz)}) < 1e-6f);
}

TEST_CASE("a plugin op gives the same values and gradients by its kernel and by its composition") {
  add_plugin_path(fixture_folder("plugin_op"));
  // HardSwish(x) = x · clip(x + 3, 0, 6) / 6; d/dx = 0 below −3, (2x + 3) / 6 between, 1 above 3.
  std::vector<float> xs = {-5.0f, -2.5f, -1.0f, 0.0f, 0.5f, 2.0f, 4.0f};
  std::vector<float> values, slopes;
  for (float v : xs) {
    double c = std::min(std::max(double(v) + 3.0, 0.0), 6.0);
    values.push_back(float(v * c / 6.0));
    slopes.push_back(v < -3 ? 0.0f : v > 3 ? 1.0f : float((2.0 * v + 3.0) / 6.0));
  }
  // onednn runs the plugin's kernel; reference has none and runs the composition.
  std::vector<std::string> backends = {"reference"};
  for (const std::string& b : available_backends())
    if (b == "onednn") backends.push_back(b);
  for (const std::string& backend : backends) {
    CAPTURE(backend);
    set_backend(backend);
    Sequential model;
    model.add(LayerSpec{"HardSwish", {{"input_shape", {7}}}});
    Tensor x = Tensor::from_vector(xs, {1, 7});
    CHECK(test::max_abs_diff(model.predict(x).to_vector(), values) < 1e-6f);
    Tensor input = Tensor::from_vector(xs, {1, 7}).set_requires_grad(true);
    std::vector<Tensor> g = gradients(ops::sum(model.layer(0).call(input, true, 0)), {input});
    REQUIRE(g[0].defined());
    CHECK(test::max_abs_diff(g[0].to_vector(), slopes) < 1e-6f);
  }
  set_backend("reference");
}

TEST_CASE("a plugin op is an op like the built-in ones: callable by name, its inputs checked") {
  set_backend("reference");
  add_plugin_path(fixture_folder("plugin_op"));
  Sequential model;
  model.add(LayerSpec{"HardSwish", {{"input_shape", {2}}}});  // loads the plugin, which defines the op
  Tensor y = run_op("hard_swish.hard_swish", {Tensor::from_vector({1, -4}, {1, 2})})[0];
  CHECK(test::max_abs_diff(y.to_vector(), {1.0f * 4.0f / 6.0f, 0.0f}) < 1e-6f);
  CHECK(error_of([] {
          run_op("hard_swish.hard_swish", {Tensor::from_vector({1}, {1}), Tensor::from_vector({1}, {1})});
        }) == "op 'hard_swish.hard_swish' takes 1 input, got 2");
}

// ------------------------------------------------------------------------------------------------
// RBM (plugins/pretraining): contrastive divergence on real images

namespace {

// Mean squared error of the RBM's mean-field reconstruction sigmoid(sigmoid(v W + c) Wᵀ + b) of v.
double reconstruction_error(const Layer& rbm, const Tensor& v) {
  auto w = rbm.get_weights();  // kernel, hidden_bias, visible_bias
  Tensor h = ops::sigmoid(ops::add(ops::matmul(v, w[0]), w[1]));
  Tensor r = ops::sigmoid(ops::add(ops::matmul(h, w[0], false, true), w[2]));
  Tensor d = ops::sub(r, v);
  return double(ops::mean(ops::mul(d, d)).to_vector()[0]);
}

}  // namespace

TEST_CASE("an RBM pretrained by contrastive divergence reconstructs MNIST digits it has not seen") {
  fs::path images =
      fs::path(LAMINA_SOURCE_DIR) / ".." / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz";
  if (!fs::exists(images)) test::skip("MNIST is not at " + images.string());
  set_backend("reference");
  set_random_seed(3);
  Tensor all = ops::scale(read_idx(images.string()), 1.0 / 255.0);
  Tensor train = all.slice(0, 2000).reshape({2000, 784});
  Tensor held_out = all.slice(9000, 10000).reshape({1000, 784});

  Sequential model;
  model.add(
      LayerSpec{"RBM", {{"units", 64}, {"pretrain", true}, {"learning_rate", 0.1}, {"input_shape", {784}}}});
  Layer& rbm = model.layer(0);
  CHECK(rbm.weight_names() == std::vector<std::string>{"kernel", "hidden_bias", "visible_bias"});
  double before_train = reconstruction_error(rbm, train),
         before_held_out = reconstruction_error(rbm, held_out);
  for (int epoch = 0; epoch < 3; ++epoch)
    for (int64_t start = 0; start < 2000; start += 50) rbm.call(train.slice(start, start + 50), true, 0);
  double after_train = reconstruction_error(rbm, train), after_held_out = reconstruction_error(rbm, held_out);
  MESSAGE("reconstruction error: training images " << before_train << " -> " << after_train << ", held-out "
                                                   << before_held_out << " -> " << after_held_out);
  CHECK(after_train < 0.4 * before_train);
  CHECK(after_held_out < 0.4 * before_held_out);

  // Outside training, and with "pretrain" false, a call is a pure sigmoid layer.
  auto w = rbm.get_weights();
  Tensor h = rbm.call(held_out, false, 0);
  CHECK(test::max_abs_diff(h.to_vector(),
                           ops::sigmoid(ops::add(ops::matmul(held_out, w[0]), w[1])).to_vector()) < 1e-5f);
  CHECK(test::max_abs_diff(rbm.get_weights()[0].to_vector(), w[0].to_vector()) == 0.0f);

  // Its config and weights survive a model file.
  fs::path file = fs::temp_directory_path() / "lamina_test_rbm.h5";
  model.compile("mean_squared_error", "sgd");
  model.save(file.string());
  Sequential loaded = load_model(file.string());
  fs::remove(file);
  CHECK(loaded.get_config() == model.get_config());
  CHECK(loaded.layer(0).get_config().at("pretrain").as_bool());
  CHECK(test::max_abs_diff(loaded.predict(held_out).to_vector(), model.predict(held_out).to_vector()) ==
        0.0f);
}

TEST_CASE("an RBM's config errors name the layer and the key") {
  std::string message = error_of([] {
    Sequential model;
    model.add(LayerSpec{"RBM", {{"units", 0}, {"input_shape", {4}}, {"name", "rbm_a"}}});
  });
  CHECK(message.rfind("RBM 'rbm_a': config key 'units' must be a positive integer, got 0", 0) == 0);
  message = error_of([] {
    Sequential model;
    model.add(LayerSpec{"RBM", {{"units", 3}, {"input_shape", {4, 4}}}});
  });
  CHECK(message.find(
            "expects one axis of visible units per sample, got 2 axes; put a Flatten layer before it") !=
        std::string::npos);
}

TEST_CASE("a plugin op named like an existing op fails the plugin's init with the naming rule") {
  set_backend("reference");
  add_plugin_path(fixture_folder("op_clash"));
  PluginInfo p = plugin_with_library("fixture_op_clash.so");
  CHECK_FALSE(p.usable);
  CHECK(p.reason ==
        "initialisation failed: an op named 'add' already exists; name plugin ops '<plugin>.<op>'");
  CHECK(error_of([] {
          Sequential model;
          model.add(LayerSpec{"OpClash", {{"input_shape", {2}}}});
        })
            .find("layer class 'OpClash' is provided by the plugin " + p.path +
                  ", which cannot be used: initialisation failed: an op named 'add'") !=
        std::string::npos);  // its layer went with it
  // and "add" is still the core's
  Tensor y = ops::add(Tensor::from_vector({1, 2}, {2}), Tensor::from_vector({3, 4}, {2}));
  CHECK(test::max_abs_diff(y.to_vector(), {4, 6}) < 1e-6f);
}

TEST_CASE("a backend with a kernel for an op the core does not have fails its init, naming the op") {
  set_backend("reference");
  add_plugin_path(fixture_folder("kernel_typo"));
  PluginInfo p = plugin_with_library("fixture_kernel_typo.so");
  CHECK_FALSE(p.usable);
  CHECK(
      p.reason.find("backend 'kernel_typo' has a kernel for unknown op 'concatenate' (kernel 1 of its table; "
                    "docs/ops.md lists the op set)") != std::string::npos);
  CHECK(error_of([] { set_backend("kernel_typo"); }).find("unknown op 'concatenate'") != std::string::npos);
}

namespace {

// Dense(1) on two inputs, one fixed batch of two rows, mean squared error: the gradient by hand is
// dL/dw = (2/N) xᵀe, dL/db = (2/N) Σ e, with e = x·w + b − y.
struct TinyProblem {
  double x[2][2] = {{1, 2}, {3, -1}};
  double y[2] = {1, 0};
  std::array<double, 3> gradient(const std::array<double, 3>& p) const {
    std::array<double, 3> g{};
    for (int n = 0; n < 2; ++n) {
      const double e = x[n][0] * p[0] + x[n][1] * p[1] + p[2] - y[n];
      g[0] += x[n][0] * e, g[1] += x[n][1] * e, g[2] += e;
    }
    return g;
  }
  Sequential model(const std::array<double, 3>& p, const OptimizerSpec& optimizer) const {
    Sequential m;
    m.add(layers::Dense(1, {.input_dim = 2}));
    m.layer(0).set_weights(
        {Tensor::from_vector({float(p[0]), float(p[1])}, {2, 1}), Tensor::from_vector({float(p[2])}, {1})});
    m.compile("mean_squared_error", optimizer);
    return m;
  }
  std::array<double, 3> step(Model& m) const {
    Tensor xs = Tensor::from_vector({float(x[0][0]), float(x[0][1]), float(x[1][0]), float(x[1][1])}, {2, 2});
    m.fit(xs, Tensor::from_vector({float(y[0]), float(y[1])}, {2, 1}),
          {.epochs = 1, .batch_size = 2, .verbose = 0, .shuffle = false});
    std::vector<float> w = m.layer(0).get_weights()[0].to_vector(),
                       b = m.layer(0).get_weights()[1].to_vector();
    return {w[0], w[1], b[0]};
  }
};

}  // namespace

TEST_CASE("an optimizer plugin (examples/lion) defines an op and steps p -= lr * sign(b1*m + (1-b1)*g)") {
  add_plugin_path(fixture_folder("lion"));
  const TinyProblem problem;
  const double lr = 0.05, beta_1 = 0.9, beta_2 = 0.99;
  // onednn runs the plugin's kernel for lion.direction, reference its composition of sign, scale, add
  for (const char* backend : {"reference", "onednn"}) {
    CAPTURE(backend);
    test::BackendScope scope(backend);
    std::array<double, 3> p = {0.5, -0.25, 0.1}, m = {0, 0, 0};
    Sequential model = problem.model(
        p, OptimizerSpec("Lion", {{"learning_rate", lr}, {"beta_1", beta_1}, {"beta_2", beta_2}}));
    for (int t = 1; t <= 3; ++t) {
      const std::array<double, 3> g = problem.gradient(p);
      for (int i = 0; i < 3; ++i) {
        const double v = beta_1 * m[i] + (1 - beta_1) * g[i];
        p[i] -= lr * double((v > 0) - (v < 0));
        m[i] = beta_2 * m[i] + (1 - beta_2) * g[i];
      }
      const std::array<double, 3> got = problem.step(model);
      for (int i = 0; i < 3; ++i) CHECK(got[i] == doctest::Approx(p[i]).epsilon(1e-6));
    }
    CHECK(model.optimizer_state().slot_names == std::vector<std::string>{"momentum"});
  }
}

TEST_CASE(
    "a third-party optimizer refuses a config key it does not take, naming the key and the known ones") {
  add_plugin_path(fixture_folder("lion"));
  set_backend("reference");
  const TinyProblem problem;
  const std::string message = error_of([&] {
    problem.model({0, 0, 0}, OptimizerSpec("Lion", {{"betta_1", 0.95}}));
  });
  CHECK(message.rfind("Lion: unknown config key 'betta_1' (did you mean 'beta_1'?); known: 'learning_rate', "
                      "'beta_1', 'beta_2', and Keras' optimizer keys 'name', 'clipnorm', 'clipvalue'",
                      0) == 0);
  // the keys every Keras optimizer config holds pass
  boost::json::object keras3{{"name", "lion"},
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
                             {"beta_2", 0.99}};
  CHECK(error_of([&] { problem.model({0, 0, 0}, OptimizerSpec("Lion", keras3)); }).empty());
  // a plugin that opts out (config_keys() returns std::nullopt) takes anything
  add_plugin_path(fixture_folder("lenient_optimizer"));
  CHECK(error_of([&] { problem.model({0, 0, 0}, OptimizerSpec("Lenient", {{"anything", 1}})); }).empty());
}

TEST_CASE("a layer plugin's scalar weight (shape {}) broadcasts, trains, and is saved and loaded") {
  set_backend("reference");
  add_plugin_path(fixture_folder("trainable_swish"));
  Sequential model;
  model.add(layers::Dense(2, {.input_dim = 3}));
  model.add(LayerSpec{"TrainableSwish", {}});
  model.compile("mean_squared_error", optimizers::SGD({.learning_rate = 0.5}));
  std::vector<Tensor> w = model.layer(1).get_weights();
  REQUIRE(w.size() == 1);
  CHECK(w[0].shape() == Shape{});
  CHECK(w[0].to_vector() == std::vector<float>{1.0f});
  Tensor x = test::random_tensor({8, 3}, 5), y = test::random_tensor({8, 2}, 6);
  model.fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  const float beta = model.layer(1).get_weights()[0].to_vector()[0];
  CHECK(beta != 1.0f);  // the gradient, summed over every element β multiplied, reached it
  const std::string path = test::scratch("trainable_swish.h5");
  model.save(path);
  Model loaded = load_model(path);
  CHECK(loaded.layer(1).get_weights()[0].shape() == Shape{});
  CHECK(loaded.layer(1).get_weights()[0].to_vector()[0] == beta);
  CHECK(test::max_abs_diff(loaded.predict(x).to_vector(), model.predict(x).to_vector()) == 0.0f);
}
