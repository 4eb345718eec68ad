// Regularizers and constraints, as Keras applies them: a regularizer's term joins the loss that fit
// and evaluate report and that the gradients follow; a constraint projects its weight after each
// optimizer step; both only for trainable weights. The numbers are Keras 3's and tf_keras' own
// (docs/regularization.md shows how they were obtained).
#include "support.hpp"

#include <cmath>

using namespace lamina;
using namespace lamina::layers;
using lamina::test::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("\"" << part << "\" not in: " << s);
  return false;
}

// x = [[0, .1], [.2, .3], [.4, .5], [.6, .7]], targets all ones: the inputs of the Keras check.
std::pair<Tensor, Tensor> four_rows() {
  std::vector<float> x;
  for (int i = 0; i < 8; ++i) x.push_back(float(i) / 10.0f);
  return {Tensor::from_vector(x, {4, 2}), Tensor::from_vector(std::vector<float>(12, 1.0f), {4, 3})};
}

// One Dense(3) on 2 inputs, kernel ones and bias zeros, with `options`' terms; MSE, plain SGD.
Model one_dense(DenseOptions options, double learning_rate = 0.0) {
  options.kernel_initializer = "ones";
  options.name = "d";
  KerasTensor in = Input({2});
  Model model(in, Dense(3, options)(in));
  model.compile({.loss = "mse", .optimizer = OptimizerSpec("SGD", {{"learning_rate", learning_rate}})});
  return model;
}

std::vector<float> kernel_of(const Model& model) { return model.get_layer("d").get_weights()[0].to_vector(); }

}  // namespace

TEST_CASE("kernel and activity regularizers add Keras' terms to the loss that fit and evaluate report") {
  // Keras 3.15 and tf_keras 2.21 give 3.815 for this model and data in both fit and evaluate: the MSE
  // 0.29, plus 0.5·Σw² = 3.0 of the six unit weights, plus 0.25·Σ|y| / batch = 0.525.
  const Tensor x = four_rows().first, y = four_rows().second;
  for (const std::string& backend_name : test::configured_backends()) {
    CAPTURE(backend_name);
    if (!test::backend_usable(backend_name)) {
      MESSAGE("skipped on " << backend_name << ": not available here");
      continue;
    }
    set_backend(backend_name);
    Model model = one_dense({.kernel_regularizer = regularizers::L2(0.5), .activity_regularizer = regularizers::L1(0.25)});
    CHECK(model.evaluate(x, y, 4)["loss"] == doctest::Approx(3.815).epsilon(1e-6));
    History h = model.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
    CHECK(h.history["loss"][0] == doctest::Approx(3.815).epsilon(1e-6));
    // Without the regularizers the same model reports the MSE alone.
    Model plain = one_dense({});
    CHECK(plain.evaluate(x, y, 4)["loss"] == doctest::Approx(0.29).epsilon(1e-6));
  }
}

TEST_CASE("a regularizer's gradient moves the weights: l2 by 2·l2·w, l1 by l1·sign(w)") {
  set_backend("reference");
  // Zero inputs leave the kernel no gradient from the data, so one SGD step with learning rate 0.1
  // moves it by the penalty's gradient alone.
  Tensor x = Tensor::zeros({4, 2}), y = Tensor::from_vector(std::vector<float>(12, 1.0f), {4, 3});
  Model l2 = one_dense({.kernel_regularizer = regularizers::L2(0.5)}, 0.1);
  l2.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0, .shuffle = false});
  for (float w : kernel_of(l2)) CHECK(w == doctest::Approx(0.9));  // 1 − 0.1·(2·0.5·1)

  Model l1 = one_dense({.kernel_regularizer = regularizers::L1(0.5)}, 0.1);
  l1.get_layer("d").set_weights({Tensor::from_vector({1, -1, 2, -2, 0.5f, -0.5f}, {2, 3}), Tensor::zeros({3})});
  l1.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0, .shuffle = false});
  std::vector<float> expected{0.95f, -0.95f, 1.95f, -1.95f, 0.45f, -0.45f};  // w − 0.1·0.5·sign(w)
  std::vector<float> got = kernel_of(l1);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]));
}

TEST_CASE("constraints project the weights after each step as Keras' MaxNorm, UnitNorm, MinMaxNorm, NonNeg") {
  set_backend("reference");
  const Tensor x = four_rows().first, y = four_rows().second;
  // Learning rate 0: the step leaves the weights as they are and only the constraint acts.
  auto stepped = [&](DenseOptions options, const std::vector<float>& kernel) {
    Model model = one_dense(options);
    model.get_layer("d").set_weights({Tensor::from_vector(kernel, {2, 3}), Tensor::zeros({3})});
    model.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
    return kernel_of(model);
  };
  // Columns (axis 0 norms): (3, 4) has norm 5, (0.3, 0.4) norm 0.5, (1, 0) norm 1.
  const std::vector<float> kernel{3, 0.3f, 1, 4, 0.4f, 0};
  auto projected = [&](const std::vector<float>& factor) {
    std::vector<float> out(kernel.size());
    for (size_t i = 0; i < kernel.size(); ++i) out[i] = kernel[i] * factor[i % 3];
    return out;
  };
  auto check_all = [](const std::vector<float>& got, const std::vector<float>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
  };
  // MaxNorm(2): a column longer than 2 is scaled to length 2; shorter ones stay.
  check_all(stepped({.kernel_constraint = constraints::MaxNorm(2.0)}, kernel), projected({0.4f, 1, 1}));
  // UnitNorm: every column to length 1.
  check_all(stepped({.kernel_constraint = constraints::UnitNorm()}, kernel), projected({0.2f, 2, 1}));
  // MinMaxNorm(1, 2, rate 0.5): halfway between the norm and the norm clipped to [1, 2].
  check_all(stepped({.kernel_constraint = constraints::MinMaxNorm(1.0, 2.0, 0.5)}, kernel),
            projected({(0.5f * 2 + 0.5f * 5) / 5, (0.5f * 1 + 0.5f * 0.5f) / 0.5f, 1}));
  // NonNeg: negative weights become 0.
  check_all(stepped({.kernel_constraint = constraints::NonNeg()}, {1, -2, 3, -4, 0, 5}), {1, 0, 3, 0, 0, 5});
  // MaxNorm over axis 1: the rows' norms ((3, .3, 1) is 3.16.., (4, .4, 0) is 4.02..) capped at 2.
  std::vector<float> rows = stepped({.kernel_constraint = constraints::MaxNorm(2.0, {1})}, kernel);
  CHECK(std::hypot(rows[0], rows[1], rows[2]) == doctest::Approx(2.0).epsilon(1e-5));
  CHECK(std::hypot(rows[3], rows[4], rows[5]) == doctest::Approx(2.0).epsilon(1e-5));
}

TEST_CASE("a layer that is not trainable is neither penalized nor constrained") {
  set_backend("reference");
  const Tensor x = four_rows().first, y = four_rows().second;
  boost::json::object config{{"units", 3},
                             {"kernel_initializer", "ones"},
                             {"kernel_regularizer", regularizers::L2(0.5)},
                             {"kernel_constraint", constraints::MaxNorm(0.1)},
                             {"trainable", false},
                             {"name", "d"}};
  KerasTensor in = Input({2});
  Model model(in, LayerSpec{"Dense", config}(in));
  model.compile({.loss = "mse", .optimizer = "sgd"});
  CHECK(model.evaluate(x, y, 4)["loss"] == doctest::Approx(0.29).epsilon(1e-6));
  model.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
  for (float w : kernel_of(model)) CHECK(w == 1.0f);
}

TEST_CASE("regularizers and constraints are read in every form Keras 3 and tf_keras write") {
  set_backend("reference");
  const Tensor x = four_rows().first, y = four_rows().second;
  auto loss_with = [&](const char* key, boost::json::value value) {
    boost::json::object config{{"units", 3}, {"kernel_initializer", "ones"}, {"name", "d"}};
    config[key] = value;
    KerasTensor in = Input({2});
    Model model(in, LayerSpec{"Dense", config}(in));
    model.compile({.loss = "mse", .optimizer = "sgd"});
    return model.evaluate(x, y, 4)["loss"];
  };
  // Six unit weights: Σw² = Σ|w| = 6.
  CHECK(loss_with("kernel_regularizer", "l2") == doctest::Approx(0.29 + 0.06).epsilon(1e-6));
  CHECK(loss_with("kernel_regularizer", "l1") == doctest::Approx(0.29 + 0.06).epsilon(1e-6));
  CHECK(loss_with("kernel_regularizer", "l1_l2") == doctest::Approx(0.29 + 0.12).epsilon(1e-6));  // tf_keras
  CHECK(loss_with("kernel_regularizer", "l1l2") == doctest::Approx(0.29).epsilon(1e-6));  // Keras 3: zeros
  // Keras 3's object form, with its module and registered_name entries.
  boost::json::object k3 = regularizers::L1L2(0.1, 0.2).as_object();
  k3["module"] = "keras.regularizers";
  k3["registered_name"] = nullptr;
  CHECK(loss_with("kernel_regularizer", k3) == doctest::Approx(0.29 + 0.6 + 1.2).epsilon(1e-6));
  CHECK(loss_with("kernel_constraint", "max_norm") == doctest::Approx(0.29).epsilon(1e-6));
  CHECK(loss_with("kernel_constraint", "nonneg") == doctest::Approx(0.29).epsilon(1e-6));  // tf_keras' alias
}

TEST_CASE("a saved model keeps its regularizers and constraints") {
  set_backend("reference");
  const Tensor x = four_rows().first, y = four_rows().second;
  Model model =
      one_dense({.kernel_regularizer = regularizers::L2(0.5), .kernel_constraint = constraints::MaxNorm(3.0, {0})});
  const std::string path = test::scratch("regularized.h5");
  model.save(path);
  Model loaded = load_model(path);
  boost::json::object config = loaded.get_layer("d").get_config();
  CHECK(config.at("kernel_regularizer").at("class_name") == "L2");
  CHECK(config.at("kernel_constraint").at("config").at("max_value").to_number<double>() == 3.0);
  CHECK(loaded.evaluate(x, y, 4)["loss"] == doctest::Approx(3.29).epsilon(1e-6));
}

TEST_CASE("a bad regularizer or constraint gives one error naming the layer and the key") {
  set_backend("reference");
  auto error_for = [](const char* key, boost::json::value value) {
    boost::json::object config{{"units", 3}, {"name", "head"}};
    config[key] = value;
    return error_of([&] {
      KerasTensor in = Input({2});
      Model model(in, LayerSpec{"Dense", config}(in));
    });
  };
  std::string e = error_for("kernel_regularizer", "l3");
  CHECK(contains(e, "Dense 'head'"));
  CHECK(contains(e, "'kernel_regularizer'"));
  CHECK(contains(e, "\"l1\", \"l2\""));
  CHECK(contains(error_for("bias_regularizer", regularizers::L2(-1.0)), "0 or more"));
  CHECK(contains(error_for("kernel_constraint", constraints::MaxNorm(2.0, {2})), "axis 2, outside the weight's 2 axes"));
  boost::json::object misspelt{{"class_name", "L2"}, {"config", {{"l_2", 0.1}}}};
  CHECK(contains(error_for("kernel_regularizer", misspelt), "unknown argument 'l_2'; L2 takes l2"));
  boost::json::object orthogonal{{"class_name", "OrthogonalRegularizer"}, {"config", {{"factor", 0.01}}}};
  CHECK(contains(error_for("kernel_regularizer", orthogonal), "does not apply yet"));
  CHECK(contains(error_for("activity_regularizer", 3), "'activity_regularizer' is 3"));
}
