// Keras' BatchNormalization and LayerNormalization (layers/normalization): values written out by
// hand, training against inference, the moving statistics after fit (with step replay), gradients
// against finite differences, every backend here, save and load_model, config errors, and real
// Keras 3 and tf_keras files with Keras' own predictions (tests/data/keras_models_v2).
#include "support.hpp"

#include "../core/src/launch_recorder.hpp"
#include "../core/src/op_registry.hpp"
#include "../core/src/replay.hpp"

#include <lamina/h5.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

using namespace lamina;
using lamina::test::error_of;
namespace json = boost::json;

namespace {

const std::string kKerasV2 = std::string(LAMINA_SOURCE_DIR) + "/tests/data/keras_models_v2";

// A model of the one layer `class_name` on samples of `input_shape`, on the active backend.
Sequential one_layer(const std::string& class_name, json::object config, const Shape& input_shape) {
  config["input_shape"] = layers::detail::to_json_array(input_shape);
  Sequential model;
  model.add(LayerSpec{class_name, config});
  return model;
}

Tensor tensor(const std::vector<float>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape);
}

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("message was: " << s);
  return false;
}

// (x − mean) / √(variance + epsilon) over a list of values, in double precision.
std::vector<double> standardized(const std::vector<double>& x, double epsilon) {
  double mean = 0, variance = 0;
  for (double v : x) mean += v / double(x.size());
  for (double v : x) variance += (v - mean) * (v - mean) / double(x.size());
  std::vector<double> out;
  for (double v : x) out.push_back((v - mean) / std::sqrt(variance + epsilon));
  return out;
}

// Counts this thread's kernel launches by op while it lives.
class LaunchCounter : public LaunchRecorder {
 public:
  LaunchCounter() : previous_(set_active_recorder(this)) {}
  ~LaunchCounter() { set_active_recorder(previous_); }
  LaunchCounter(const LaunchCounter&) = delete;
  LaunchCounter& operator=(const LaunchCounter&) = delete;
  void launched(const OpDef& op, BackendEntry&, const lamina_view*, size_t, const lamina_view*, size_t,
                const Attributes&, const char*, int64_t, const std::vector<Tensor>&,
                const std::vector<Tensor>&) override {
    ++counts[op.name];
  }
  void spoil() override {}
  std::map<std::string, int> counts;

 private:
  LaunchRecorder* previous_;
};

// A prediction with BatchNormalization folding on or off, and how many batch_norm_inference kernels
// it launched.
struct Prediction {
  std::vector<float> values;
  int batch_norm_launches = 0;
};
Prediction predict_folding(const Model& model, const Tensor& x, bool fold) {
  if (fold)
    unsetenv("LAMINA_FOLD_BATCH_NORM");
  else
    setenv("LAMINA_FOLD_BATCH_NORM", "0", 1);
  Prediction p;
  {
    LaunchCounter counter;
    p.values = model.predict(x, 256).to_vector();
    p.batch_norm_launches = counter.counts["batch_norm_inference"];
  }
  unsetenv("LAMINA_FOLD_BATCH_NORM");
  return p;
}

// max |a − b| / max |b|
double relative_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0;
  for (float v : b) scale = std::max(scale, double(std::fabs(v)));
  return double(test::max_abs_diff(a, b)) / std::max(scale, 1e-30);
}

// Gives each BatchNormalization of `model` statistics and a scale far from their initial values.
void randomize_batch_norms(Model& model, uint64_t seed) {
  for (size_t i = 0; i < model.size(); ++i) {
    Layer& layer = model.layer(i);
    if (layer.class_name() != "BatchNormalization") continue;
    std::vector<Tensor> w;
    for (size_t k = 0; k < layer.weights().size(); ++k) {
      const std::string& name = layer.weight_names()[k];
      const Shape& shape = layer.weights()[k].shape();
      const bool positive = name == "gamma" || name == "moving_variance";
      w.push_back(test::random_tensor(shape, seed++, positive ? 0.5f : -1.0f, positive ? 2.0f : 1.0f));
    }
    layer.set_weights(w);
  }
}

}  // namespace

TEST_CASE(
    "BatchNormalization in inference: gamma·(x − moving_mean)/√(moving_variance + ε) + beta, on every "
    "backend") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    // features on the last axis
    Sequential model = one_layer("BatchNormalization", {{"epsilon", 0.0}}, {2});
    Layer& bn = model.layer(0);
    CHECK(bn.weight_names() == std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"});
    bn.set_weights(
        {tensor({2, 0.5f}, {2}), tensor({1, -1}, {2}), tensor({3, -4}, {2}), tensor({4, 0.25f}, {2})});
    // feature 0: 2·(x − 3)/2 + 1 = x − 2; feature 1: 0.5·(x + 4)/0.5 − 1 = x + 3
    CHECK(test::max_abs_diff(model.predict(tensor({5, 1, -1, 0}, {2, 2})).to_vector(), {3, 4, -3, 3}) <
          1e-6f);

    // features on axis 1 of (batch, 2, 3): every value of row r uses feature r
    Sequential rows =
        one_layer("BatchNormalization", {{"axis", 1}, {"center", false}, {"scale", false}}, {2, 3});
    CHECK(rows.layer(0).weight_names() == std::vector<std::string>{"moving_mean", "moving_variance"});
    rows.layer(0).set_weights({tensor({1, 2}, {2}), tensor({0.999f, 3.999f}, {2})});  // ε = 0.001 → √ 1 and 2
    CHECK(test::max_abs_diff(rows.predict(tensor({1, 2, 3, 2, 4, 6}, {1, 2, 3})).to_vector(),
                             {0, 1, 2, 0, 1, 2}) < 1e-5f);
  }
}

TEST_CASE("BatchNormalization in training uses the batch's statistics and moves the moving ones") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential model = one_layer("BatchNormalization", {{"momentum", 0.75}}, {2});
    Layer& bn = model.layer(0);
    bn.set_weights({tensor({2, 1}, {2}), tensor({0, 10}, {2}), tensor({0, 0}, {2}), tensor({1, 1}, {2})});
    // feature 0: 1, 3, 5 (mean 3, biased variance 8/3); feature 1: 10, 20, 60 (mean 30, variance 1400/3)
    const Tensor x = tensor({1, 10, 3, 20, 5, 60}, {3, 2});
    std::vector<double> f0 = standardized({1, 3, 5}, 1e-3), f1 = standardized({10, 20, 60}, 1e-3);
    const std::vector<float> y = bn.call(x, true, 0).to_vector();
    for (size_t i = 0; i < 3; ++i) {
      CHECK(y[2 * i] == doctest::Approx(2 * f0[i]).epsilon(1e-5));
      CHECK(y[2 * i + 1] == doctest::Approx(f1[i] + 10).epsilon(1e-5));
    }
    // moving = 0.75·moving + 0.25·batch, the variance biased (as Keras 3)
    std::vector<Tensor> w = bn.get_weights();
    CHECK(test::max_abs_diff(w[2].to_vector(), {0.75f, 7.5f}) < 1e-5f);
    CHECK(w[3].to_vector()[0] == doctest::Approx(0.75 + 0.25 * 8 / 3).epsilon(1e-5));
    CHECK(w[3].to_vector()[1] == doctest::Approx(0.75 + 0.25 * 1400 / 3).epsilon(1e-5));
    // inference uses them and changes nothing
    (void)bn.call(x, false, 0);
    (void)model.predict(x);
    CHECK(bn.get_weights()[2].to_vector() == w[2].to_vector());
    CHECK(bn.get_weights()[3].to_vector() == w[3].to_vector());

    // "trainable": false runs in inference mode during training too, as in Keras
    Sequential frozen = one_layer("BatchNormalization", {{"trainable", false}, {"epsilon", 0.0}}, {2});
    CHECK(frozen.layer(0).get_weights()[2].to_vector() == std::vector<float>{0, 0});
    CHECK(frozen.layer(0).call(x, true, 0).to_vector() == x.to_vector());  // moving 0 and 1: the identity
    CHECK(frozen.layer(0).get_weights()[2].to_vector() == std::vector<float>{0, 0});
  }
}

TEST_CASE(
    "BatchNormalization in fit: only gamma and beta are trained, the moving statistics move as N explicit "
    "updates, replayed or not") {
  // BatchNormalization first, so its input is the batch: the expected moving statistics follow from
  // the data alone. 16 rows, batches of 4 in order, 3 epochs: 12 updates.
  const Tensor x = test::random_tensor({16, 3}, 5, -2.0f, 4.0f), y = test::random_tensor({16, 1}, 6);
  const double momentum = 0.9;
  std::vector<double> mean(3, 0.0), variance(3, 1.0);
  const std::vector<float> xs = x.to_vector();
  for (int step = 0; step < 12; ++step) {
    const int first = (step % 4) * 4;
    for (int f = 0; f < 3; ++f) {
      double m = 0, v = 0;
      for (int r = first; r < first + 4; ++r) m += xs[size_t(r * 3 + f)] / 4.0;
      for (int r = first; r < first + 4; ++r) v += std::pow(xs[size_t(r * 3 + f)] - m, 2) / 4.0;
      mean[size_t(f)] = momentum * mean[size_t(f)] + (1 - momentum) * m;
      variance[size_t(f)] = momentum * variance[size_t(f)] + (1 - momentum) * v;
    }
  }
  struct Run {
    std::vector<std::vector<float>> weights;
    std::map<std::string, std::vector<double>> history;
    int64_t replayed = 0;
  };
  auto train = [&](bool replay) {
    if (replay)
      unsetenv("LAMINA_STEP_REPLAY");
    else
      setenv("LAMINA_STEP_REPLAY", "0", 1);
    set_random_seed(4);
    Sequential model;
    model.add(layers::BatchNormalization({.momentum = momentum, .input_shape = {3}, .name = "bn"}));
    model.add(layers::Dense(1));
    model.compile("mean_squared_error", "sgd");
    const int64_t before = replayed_steps();
    History h = model.fit(x, y, {.epochs = 3, .batch_size = 4, .verbose = 0, .shuffle = false});
    unsetenv("LAMINA_STEP_REPLAY");
    std::vector<std::string> trained = model.optimizer_state().weights;
    CHECK(trained == std::vector<std::string>{"bn/gamma", "bn/beta", "dense/kernel", "dense/bias"});
    return Run{test::weights_of(model), h.history, replayed_steps() - before};
  };
  for (const std::string backend_name : {"reference", "onednn"}) {
    CAPTURE(backend_name);
    test::use_backend_or_skip(backend_name);
    const Run normal = train(false), replayed = train(true);
    CHECK(normal.replayed == 0);
    CHECK(replayed.replayed > 0);               // the moving statistics do not stop replay
    CHECK(replayed.weights == normal.weights);  // bit for bit
    CHECK(replayed.history == normal.history);
    for (size_t f = 0; f < 3; ++f) {
      CHECK(replayed.weights[2][f] == doctest::Approx(mean[f]).epsilon(1e-5));
      CHECK(replayed.weights[3][f] == doctest::Approx(variance[f]).epsilon(1e-5));
    }
  }
}

TEST_CASE(
    "gradients through BatchNormalization (batch statistics) and LayerNormalization match finite "
    "differences") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    set_random_seed(8);
    Sequential model;
    model.add(layers::Dense(4, {.input_dim = 3}));
    model.add(layers::BatchNormalization({.momentum = 0.5}));
    model.add(LayerSpec{"Reshape", {{"target_shape", json::array{2, 2}}}});
    model.add(layers::LayerNormalization({.axis = {1, 2}}));
    Layer &bn = model.layer(1), &ln = model.layer(3);
    bn.set_weights({tensor({1.5f, 0.5f, -1, 2}, {4}), tensor({0.1f, 0.2f, 0.3f, 0.4f}, {4}),
                    tensor({0, 0, 0, 0}, {4}), tensor({1, 1, 1, 1}, {4})});
    ln.set_weights({tensor({1, -2, 0.5f, 3}, {2, 2}), tensor({0, 1, 0, -1}, {2, 2})});
    Tensor x = test::random_tensor({5, 3}, 3);
    const Tensor r = test::random_tensor({5, 2, 2}, 4);  // loss = Σ y·r
    auto loss_of = [&](const Tensor& input) {
      Tensor h = input;
      for (size_t i = 0; i < model.size(); ++i) h = model.layer(i).call(h, true, 0);
      return ops::sum(ops::mul(h, r));
    };
    x.set_requires_grad(true);
    const std::vector<Tensor> wrt{x, bn.weights()[0], bn.weights()[1], ln.weights()[0], ln.weights()[1]};
    const std::vector<Tensor> grads = gradients(loss_of(x), wrt);
    x.set_requires_grad(false);
    NoGradGuard no_grad;
    const float h = 1e-2f;
    auto check = [&](const std::vector<float>& analytic, size_t i, double plus, double minus) {
      const double numeric = (plus - minus) / (2 * h);
      CHECK(std::fabs(analytic[i] - numeric) < 5e-3 + 2e-2 * std::fabs(numeric));
    };
    std::vector<float> xv = x.to_vector(), gx = grads[0].to_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      CAPTURE(i);
      std::vector<float> p = xv, m = xv;
      p[i] += h, m[i] -= h;
      check(gx, i, loss_of(tensor(p, {5, 3})).item(), loss_of(tensor(m, {5, 3})).item());
    }
    for (size_t k = 1; k < wrt.size(); ++k) {
      Layer& layer = k < 3 ? bn : ln;
      const size_t slot = (k - 1) % 2;
      CAPTURE(k);
      std::vector<Tensor> weights = layer.get_weights();
      const std::vector<float> w = weights[slot].to_vector(), g = grads[k].to_vector();
      for (size_t i = 0; i < w.size(); ++i) {
        CAPTURE(i);
        std::vector<float> p = w, m = w;
        p[i] += h, m[i] -= h;
        weights[slot] = tensor(p, wrt[k].shape());
        layer.set_weights(weights);
        const double plus = loss_of(x).item();
        weights[slot] = tensor(m, wrt[k].shape());
        layer.set_weights(weights);
        const double minus = loss_of(x).item();
        weights[slot] = tensor(w, wrt[k].shape());
        layer.set_weights(weights);
        check(g, i, plus, minus);
      }
    }
  }
}

TEST_CASE("LayerNormalization normalizes each sample over its axes, Keras 3's [-1] and tf_keras' [1] alike") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    const Tensor x = tensor({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
    for (const json::value& axis :
         {json::value(json::array{-1}), json::value(json::array{1}), json::value(-1)}) {
      CAPTURE(json::serialize(axis));
      Sequential model = one_layer("LayerNormalization", {{"axis", axis}}, {4});
      CHECK(model.layer(0).weight_names() == std::vector<std::string>{"gamma", "beta"});
      CHECK(model.layer(0).weights()[0].shape() == Shape{4});
      model.layer(0).set_weights({tensor({1, 2, 1, 2}, {4}), tensor({0, 0, 1, 1}, {4})});
      // row 0: mean 2.5, variance 1.25; row 1: mean 5, variance 5
      const double a = 1 / std::sqrt(1.25 + 1e-3), b = 1 / std::sqrt(5 + 1e-3);
      const std::vector<float> expected = {float(-1.5 * a),        float(2 * -0.5 * a), float(0.5 * a + 1),
                                           float(2 * 1.5 * a + 1), float(-3 * b),       float(2 * -1 * b),
                                           float(1 * b + 1),       float(2 * 3 * b + 1)};
      CHECK(test::max_abs_diff(model.predict(x).to_vector(), expected) < 1e-5f);
      CHECK(model.layer(0).get_config().at("axis") == axis);  // written back as read
    }
    // over two axes: gamma and beta take their shape; statistics over each sample's 6 values
    Sequential both =
        one_layer("LayerNormalization", {{"axis", json::array{1, 2}}, {"epsilon", 0.0}}, {2, 3});
    CHECK(both.layer(0).weights()[0].shape() == Shape{2, 3});
    const std::vector<double> z = standardized({1, 2, 3, 4, 5, 9}, 0.0);
    CHECK(test::max_abs_diff(both.predict(tensor({1, 2, 3, 4, 5, 9}, {1, 2, 3})).to_vector(),
                             std::vector<float>(z.begin(), z.end())) < 1e-5f);
    // over axis 1 of (batch, 2, 3) only: each column normalized on its own
    Sequential columns =
        one_layer("LayerNormalization", {{"axis", 1}, {"center", false}, {"epsilon", 0.0}}, {2, 3});
    CHECK(columns.layer(0).weight_names() == std::vector<std::string>{"gamma"});
    CHECK(columns.layer(0).weights()[0].shape() == Shape{2});
    CHECK(test::max_abs_diff(columns.predict(tensor({1, 2, 3, 3, 6, 3.5f}, {1, 2, 3})).to_vector(),
                             {-1, -1, -1, 1, 1, 1}) < 1e-5f);
  }
}

// The BatchNormalization configs of shared/interop/keras_models_v2's inception_bn files (whose
// weight_names are stem_bn/gamma, beta, moving_mean, moving_variance in that order), initializers
// and dtype aside.
TEST_CASE("BatchNormalization reads the configs Keras 3 and tf_keras write, and writes them back") {
  set_backend("reference");
  const json::object k3 = json::parse(R"({"name": "stem_bn", "trainable": true, "axis": -1, "momentum": 0.9,
      "epsilon": 0.001, "center": true, "scale": true, "beta_regularizer": null, "gamma_regularizer": null,
      "beta_constraint": null, "gamma_constraint": null, "synchronized": false, "renorm": false,
      "renorm_clipping": null, "renorm_momentum": 0.99})")
                              .as_object();
  const json::object tfk2 =
      json::parse(R"({"name": "stem_bn", "trainable": true, "axis": [3], "momentum": 0.9,
      "epsilon": 0.001, "center": true, "scale": true, "beta_regularizer": null, "gamma_regularizer": null,
      "beta_constraint": null, "gamma_constraint": null})")
          .as_object();
  for (const json::object& config : {k3, tfk2}) {
    CAPTURE(json::serialize(config));
    Sequential model = one_layer("BatchNormalization", config, {28, 28, 16});
    const Layer& bn = model.layer(0);
    CHECK(bn.weight_names() == std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"});
    for (const Tensor& w : bn.weights()) CHECK(w.shape() == Shape{16});
    const json::object written = bn.get_config();
    for (const auto& kv : config) CHECK(written.at(kv.key()) == kv.value());
    CHECK(written.contains("synchronized") == config.contains("synchronized"));
  }
}

TEST_CASE("bad normalization configs give one error naming the layer and the key") {
  set_backend("reference");
  auto bn = [](json::object config, const Shape& input = {4}) {
    config["name"] = "bn";
    return error_of([&] { one_layer("BatchNormalization", config, input); });
  };
  auto ln = [](json::object config, const Shape& input = {4}) {
    config["name"] = "ln";
    return error_of([&] { one_layer("LayerNormalization", config, input); });
  };
  std::string e = bn({{"axis", 3}}, {2, 3});
  CHECK(contains(e, "BatchNormalization 'bn'"));
  CHECK(contains(e, "'axis'"));
  CHECK(contains(e, "out of range"));
  CHECK(contains(bn({{"axis", -4}}, {2, 3}), "out of range"));
  CHECK(contains(bn({{"axis", 0}}), "the batch axis"));
  CHECK(contains(bn({{"axis", json::array{1, 2}}}, {2, 3}), "one axis"));
  CHECK(contains(bn({{"axis", "channels"}}), "'axis' must be an integer"));
  e = bn({{"renorm", true}, {"renorm_clipping", nullptr}, {"renorm_momentum", 0.99}});
  CHECK(contains(e, "BatchNormalization 'bn'"));
  CHECK(contains(e, "'renorm'"));
  CHECK(contains(bn({{"epsilon", -1e-3}}), "'epsilon' must be 0 or more"));
  CHECK(contains(bn({{"momentum", 1.5}}), "'momentum' must be in [0, 1]"));
  CHECK(contains(bn({{"center", "yes"}}), "'center' must be true or false"));
  CHECK(contains(bn({{"virtual_batch_size", 8}}), "'virtual_batch_size'"));
  e = ln({{"rms_scaling", true}});
  CHECK(contains(e, "LayerNormalization 'ln'"));
  CHECK(contains(e, "'rms_scaling'"));
  CHECK(contains(ln({{"axis", json::array{1, -1}}}), "twice"));
  CHECK(contains(ln({{"axis", json::array{}}}), "empty list"));
  CHECK(contains(ln({{"axis", json::array{2}}}), "LayerNormalization 'ln': config key 'axis' names axis 2"));
  CHECK(contains(ln({{"epsilon", -1.0}}), "'epsilon'"));
  // Keras 3's keys with their default values are accepted and written back
  Sequential k3 = one_layer("BatchNormalization",
                            {{"synchronized", false},
                             {"renorm", false},
                             {"renorm_clipping", nullptr},
                             {"renorm_momentum", 0.99},
                             {"gamma_regularizer", nullptr}},
                            {4});
  const json::object config = k3.layer(0).get_config();
  for (const char* key :
       {"synchronized", "renorm", "renorm_clipping", "renorm_momentum", "gamma_regularizer"})
    CHECK(config.contains(key));
}

TEST_CASE(
    "BatchNormalization and LayerNormalization survive save and load_model, moving statistics included") {
  set_backend("reference");
  set_random_seed(12);
  Sequential model;
  model.add(layers::Dense(6, {.input_dim = 4, .name = "fc"}));
  model.add(layers::BatchNormalization({.momentum = 0.8, .epsilon = 1e-2, .name = "bn"}));
  model.add(layers::LayerNormalization({.name = "ln"}));
  model.add(layers::Dense(2, {.name = "out"}));
  model.compile("mean_squared_error", "adam");
  const Tensor x = test::random_tensor({32, 4}, 1), y = test::random_tensor({32, 2}, 2);
  model.fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  CHECK(model.layer(1).get_weights()[2].to_vector() != std::vector<float>(6, 0.0f));  // moved

  const std::string path = test::scratch("normalization.h5");
  model.save(path);
  {
    h5::File f(path, h5::File::read_only);
    std::vector<std::string> names = f.strings_attribute("model_weights/bn", "weight_names");
    REQUIRE(names.size() == 4);  // Keras' order: gamma, beta, moving_mean, moving_variance
    CHECK(contains(names[0], "gamma"));
    CHECK(contains(names[1], "beta"));
    CHECK(contains(names[2], "moving_mean"));
    CHECK(contains(names[3], "moving_variance"));
  }
  Sequential loaded = load_model(path);
  CHECK(test::weights_of(loaded) == test::weights_of(model));
  // the configs come back as written, but for initializers, which the file spells out in full
  for (const char* name : {"bn", "ln"}) {
    CAPTURE(name);
    const json::object before = model.get_layer(name).get_config(),
                       after = loaded.get_layer(name).get_config();
    CHECK(before.size() == after.size());
    for (const auto& kv : before)
      if (!kv.key().ends_with("_initializer")) CHECK(after.at(kv.key()) == kv.value());
  }
  CHECK(loaded.predict(x).to_vector() == model.predict(x).to_vector());
  // training continues from the restored state exactly as the original does
  set_random_seed(13);
  model.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  set_random_seed(13);
  loaded.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  CHECK(test::weights_of(loaded) == test::weights_of(model));
}

TEST_CASE("real Keras 3 and tf_keras files with LayerNormalization predict as Keras did, on every backend") {
  const Tensor input = test::read_npy(kKerasV2 + "/k3_dense_prelu_ln.input.npy");  // tf_keras' is the same file
  for (const std::string name : {"k3_dense_prelu_ln", "tfk2_dense_prelu_ln"}) {
    const std::vector<float> expected = test::read_npy(kKerasV2 + "/" + name + ".ref.npy").to_vector();
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(name);
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = load_model(kKerasV2 + "/" + name + ".h5");
      const Layer& ln = model.get_layer("layernorm");
      CHECK(ln.class_name() == "LayerNormalization");
      CHECK(ln.weights()[0].shape() == Shape{64});
      const float diff = test::max_abs_diff(model.predict(input, 256).to_vector(), expected);
      MESSAGE(name << " on " << backend_name << ": max |diff| " << diff);
      CHECK(diff < 1e-4f);
    }
  }
}

TEST_CASE(
    "in inference a BatchNormalization after a Conv2D or Dense runs folded into it: the unfolded predictions "
    "within 1e-5, its current weights, LAMINA_FOLD_BATCH_NORM=0 turns it off") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    set_random_seed(21);
    const KerasTensor x = Input({8, 8, 3});
    KerasTensor h = LayerSpec{
        "Conv2D", {{"filters", 6}, {"kernel_size", 3}, {"padding", "same"}, {"use_bias", false}}}(x);
    h = LayerSpec{"BatchNormalization"}(h);
    h = LayerSpec{"Activation", {{"activation", "relu"}}}(h);
    h = LayerSpec{"Conv2D", {{"filters", 4}, {"kernel_size", 3}, {"strides", 2}}}(h);
    h = LayerSpec{"BatchNormalization", {{"center", false}}}(h);
    h = LayerSpec{"Flatten"}(h);
    h = LayerSpec{"Dense", {{"units", 5}}}(h);
    h = LayerSpec{"BatchNormalization", {{"scale", false}, {"epsilon", 1e-5}}}(h);
    Model model(x, h);
    randomize_batch_norms(model, 30);
    const Tensor images = test::random_tensor({10, 8, 8, 3}, 31);
    // kernels of their own on reference and onednn: there, the launches show which path ran
    const bool counted = backend_name == "reference" || backend_name == "onednn";

    Prediction folded = predict_folding(model, images, true), plain = predict_folding(model, images, false);
    CHECK(relative_diff(folded.values, plain.values) < 1e-5);
    if (counted) {
      CHECK(folded.batch_norm_launches == 0);
      CHECK(plain.batch_norm_launches == 3);
    }
    // new weights, in the convolution and in its BatchNormalization, are seen at the next predict
    randomize_batch_norms(model, 40);
    Layer& conv = model.layer(1);
    conv.set_weights({test::random_tensor(conv.weights()[0].shape(), 41)});
    const Prediction refolded = predict_folding(model, images, true),
                     replain = predict_folding(model, images, false);
    CHECK(test::max_abs_diff(replain.values, plain.values) > 1e-2f);
    CHECK(relative_diff(refolded.values, replain.values) < 1e-5);

    // and training never folds: the batch's statistics, not the moving ones
    LaunchCounter counter;
    // read back, so that no queued work (opencl) is left running when the process ends
    (void)model.run({images}, true, 0)[0].to_vector();
    if (counted) CHECK(counter.counts["batch_norm_train"] == 3);
  }
}

TEST_CASE(
    "a BatchNormalization is not folded when the convolution's output has another reader or it is shared") {
  test::use_backend_or_skip("reference");
  set_random_seed(22);
  const Tensor v = test::random_tensor({7, 4}, 23);
  {  // the Dense output also goes around the BatchNormalization
    const KerasTensor x = Input({4});
    const KerasTensor d = LayerSpec{"Dense", {{"units", 4}}}(x);
    const KerasTensor y = LayerSpec{"Add"}({d, LayerSpec{"BatchNormalization"}(d)});
    Model model(x, y);
    randomize_batch_norms(model, 24);
    const Prediction folded = predict_folding(model, v, true), plain = predict_folding(model, v, false);
    CHECK(folded.values == plain.values);
    CHECK(folded.batch_norm_launches == 1);
  }
  {  // one BatchNormalization called after two Dense layers
    const KerasTensor x = Input({4});
    const LayerSpec bn{"BatchNormalization"};
    const KerasTensor a = bn(LayerSpec{"Dense", {{"units", 4}}}(x));
    const KerasTensor b = bn(LayerSpec{"Dense", {{"units", 4}}}(x));
    Model model(x, LayerSpec{"Add"}({a, b}));
    randomize_batch_norms(model, 25);
    const Prediction folded = predict_folding(model, v, true), plain = predict_folding(model, v, false);
    CHECK(folded.values == plain.values);
    CHECK(folded.batch_norm_launches == 2);
  }
}

TEST_CASE(
    "the inception_bn files predict the same with BatchNormalization folded and not, and as Keras did") {
  const Tensor images = test::read_npy(kKerasV2 + "/images.input.npy");
  for (const std::string name : {"k3_inception_bn", "tfk2_inception_bn"}) {
    const std::vector<float> expected = test::read_npy(kKerasV2 + "/" + name + ".ref.npy").to_vector();
    for (const std::string backend_name : {"reference", "onednn"}) {
      CAPTURE(name);
      CAPTURE(backend_name);
      test::use_backend_or_skip(backend_name);
      Model model = load_model(kKerasV2 + "/" + name + ".h5");
      const Prediction folded = predict_folding(model, images, true),
                       plain = predict_folding(model, images, false);
      MESSAGE(name << " on " << backend_name << ": folded against unfolded, max relative diff "
                   << relative_diff(folded.values, plain.values) << "; against Keras, max |diff| "
                   << test::max_abs_diff(folded.values, expected) << " folded, "
                   << test::max_abs_diff(plain.values, expected) << " unfolded");
      CHECK(plain.batch_norm_launches > 0);
      CHECK(folded.batch_norm_launches < plain.batch_norm_launches);
      CHECK(relative_diff(folded.values, plain.values) < 1e-5);
      CHECK(test::max_abs_diff(folded.values, expected) < 1e-4f);
    }
  }
}
