// End to end: the seed's two programs train, on every backend, and backends agree.
#include "support.hpp"

#include <filesystem>
#include <random>

using namespace lamina;
using namespace lamina::layers;

namespace {

std::pair<Tensor, Tensor> two_clouds(int n) {
  std::mt19937_64 g(42);
  std::normal_distribution<float> noise(0.0f, 1.2f);
  std::vector<float> x, y;
  for (int i = 0; i < n; ++i) {
    bool positive = i % 2 == 0;
    x.push_back((positive ? 1.0f : -2.0f) + noise(g));
    x.push_back((positive ? -1.0f : -3.0f) + noise(g));
    y.push_back(positive ? 1.0f : 0.0f);
  }
  return {Tensor::from_vector(x, {n, 2}), Tensor::from_vector(y, {n, 1})};
}

Sequential seed_mlp() {
  Sequential clf;
  clf.add(Dense(100, {.input_dim = 2, .activation = "sigmoid"}));
  clf.add(Dense(100, {.activation = "sigmoid"}));
  clf.add(Dense(1, {.activation = "sigmoid"}));
  clf.compile("mean_squared_error", "sgd", {"accuracy"});
  return clf;
}

Sequential seed_cnn() {
  Sequential model;
  model.add(Conv2D(32, {5, 5}, {.activation = "relu", .input_shape = {28, 28, 1}}));
  model.add(Conv2D(32, {5, 5}, {.activation = "relu"}));
  model.add(MaxPooling2D({2, 2}));
  model.add(Flatten());
  model.add(Dense(128, {.activation = "relu"}));
  model.add(Dense(10, {.activation = "softmax"}));
  model.compile({.loss = "categorical_crossentropy", .optimizer = "adadelta", .metrics = {"accuracy"}});
  return model;
}

const char* kFashion = "/usr/share/datasets/fashion-mnist";

void seed_mlp_learns(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  set_random_seed(7);
  auto [x, y] = two_clouds(1000);
  Sequential clf = seed_mlp();
  History h = clf.fit(x, y, {.epochs = 20, .batch_size = 16, .verbose = 0});
  const auto& loss = h.history.at("loss");
  CHECK(loss.back() < 0.8 * loss.front());
  CHECK(h.history.at("accuracy").back() > 0.85);
  Tensor p = clf.predict(Tensor::from_vector({1, -2, -3, -5}, {2, 2}));
  CHECK(p.to_vector()[0] > p.to_vector()[1]);
}

void seed_cnn_trains(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  if (!std::filesystem::exists(kFashion)) test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  set_random_seed(1);
  auto [train, test] = datasets::fashion_mnist::load_data();
  Tensor x = train.x.slice(0, 2000).reshape({-1, 28, 28, 1}) / 255.0f;
  Tensor y = to_categorical(train.y.slice(0, 2000), 10);
  Tensor xv = test.x.slice(0, 1000).reshape({-1, 28, 28, 1}) / 255.0f;
  Tensor yv = to_categorical(test.y.slice(0, 1000), 10);
  Sequential model = seed_cnn();
  History h = model.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 2, .validation_data = std::make_pair(xv, yv)});
  MESSAGE("seed CNN on " << backend_name << ": val_accuracy " << h.history.at("val_accuracy").back());
  CHECK(h.history.at("val_accuracy").back() >= 0.60);
}

void predictions_match_reference(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  if (!std::filesystem::exists(kFashion)) test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  auto data = datasets::fashion_mnist::load_data();
  Tensor x = data.test.x.slice(0, 64).reshape({-1, 28, 28, 1}) / 255.0f;
  set_random_seed(3);
  set_backend("reference");
  Sequential a = seed_cnn();
  Tensor pa = a.predict(x);
  set_backend(backend_name);
  Sequential b = seed_cnn();
  for (size_t i = 0; i < a.size(); ++i) b.layer(i).set_weights(a.layer(i).get_weights());
  Tensor pb = b.predict(x);
  CHECK(test::max_abs_diff(pa.to_vector(), pb.to_vector()) < 1e-4f);
}

}  // namespace

TEST_CASE("the seed MLP learns its 2-D problem on reference") { seed_mlp_learns("reference"); }
TEST_CASE("the seed MLP learns its 2-D problem on onednn") { seed_mlp_learns("onednn"); }
TEST_CASE("the seed MLP learns its 2-D problem on cudnn") { seed_mlp_learns("cudnn"); }
TEST_CASE("the seed MLP learns its 2-D problem on opencl") { seed_mlp_learns("opencl"); }
TEST_CASE("the seed CNN reaches val_accuracy >= 0.60 after 1 epoch on 2,000 Fashion-MNIST images on reference") {
  seed_cnn_trains("reference");
}
TEST_CASE("the seed CNN reaches val_accuracy >= 0.60 after 1 epoch on 2,000 Fashion-MNIST images on onednn") {
  seed_cnn_trains("onednn");
}
TEST_CASE("the seed CNN reaches val_accuracy >= 0.60 after 1 epoch on 2,000 Fashion-MNIST images on cudnn") {
  seed_cnn_trains("cudnn");
}
TEST_CASE("the seed CNN reaches val_accuracy >= 0.60 after 1 epoch on 2,000 Fashion-MNIST images on opencl") {
  seed_cnn_trains("opencl");
}

TEST_CASE("reference and onednn give the same predictions for the same seed CNN weights") {
  predictions_match_reference("onednn");
}
TEST_CASE("reference and cudnn give the same predictions for the same seed CNN weights") {
  predictions_match_reference("cudnn");
}
TEST_CASE("reference and opencl give the same predictions for the same seed CNN weights") {
  predictions_match_reference("opencl");
}

TEST_CASE("the same seed gives the same run on the same backend") {
  set_backend("reference");
  auto run = [] {
    set_random_seed(11);
    auto [x, y] = two_clouds(200);
    Sequential clf = seed_mlp();
    clf.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0});
    return clf.layer(0).get_weights()[0].to_vector();
  };
  CHECK(run() == run());
}

TEST_CASE("evaluate reports the loss and the compiled metrics") {
  set_backend("reference");
  set_random_seed(5);
  auto [x, y] = two_clouds(100);
  Sequential clf = seed_mlp();
  auto r = clf.evaluate(x, y);
  CHECK(r.count("loss") == 1);
  CHECK(r.count("accuracy") == 1);
  CHECK(r.at("loss") > 0.0);
}

TEST_CASE("fit and evaluate compute a softmax output's cross-entropy the same way, from its logits") {
  // logits (0, 25) for a sample of class 0: from the logits the loss is 25 + log(1 + e^-25) ≈ 25;
  // from probabilities clipped at 1e-7 it would be -log(1e-7) ≈ 16.1
  set_backend("reference");
  Sequential model;
  model.add(layers::Dense(2, {.input_dim = 1, .activation = "softmax"}));
  model.layer(0).set_weights({Tensor::from_vector({0, 25}, {1, 2}), Tensor::from_vector({0, 0}, {2})});
  model.compile({.loss = "categorical_crossentropy", .optimizer = optimizers::SGD({.learning_rate = 0.0})});
  Tensor x = Tensor::from_vector({1}, {1, 1}), y = Tensor::from_vector({1, 0}, {1, 2});
  double evaluated = model.evaluate(x, y).at("loss");
  CHECK(evaluated == doctest::Approx(25.0).epsilon(1e-5));
  History h = model.fit(x, y, {.epochs = 1, .batch_size = 1, .verbose = 0});
  CHECK(h.history.at("loss").at(0) == doctest::Approx(evaluated).epsilon(1e-6));
}
