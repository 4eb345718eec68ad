// Keras' activation layers (ReLU, LeakyReLU, ELU, PReLU, Softmax) on inputs whose outputs are
// written out by hand, their config keys as Keras 3 and tf_keras write them, and PReLU's trainable
// slopes.
#include "support.hpp"

#include <cmath>

using namespace lamina;
using lamina::test::error_of;

namespace {

std::vector<float> predict(const Model& model, const std::vector<float>& x, const Shape& shape) {
  return model.predict(Tensor::from_vector(x, shape)).to_vector();
}

}  // namespace

TEST_CASE("ReLU, LeakyReLU and ELU compute Keras' functions, with their config keys") {
  const std::vector<float> x = {-2, -0.5f, 0, 1, 7};
  CHECK(predict(test::single_layer("ReLU", {}, {5}), x, {1, 5}) == std::vector<float>{0, 0, 0, 1, 7});
  CHECK(test::max_abs_diff(
            predict(test::single_layer("ReLU", {{"max_value", 6.0}, {"negative_slope", 0.1}}, {5}), x, {1, 5}),
            {-0.2f, -0.05f, 0, 1, 6}) < 1e-6f);
  CHECK(test::max_abs_diff(predict(test::single_layer("LeakyReLU", {{"negative_slope", 0.2}}, {5}), x, {1, 5}),
                           {-0.4f, -0.1f, 0, 1, 7}) < 1e-6f);
  Sequential tf_keras = test::single_layer("LeakyReLU", {{"alpha", 0.3}}, {5});  // tf_keras' name for the slope
  CHECK(test::max_abs_diff(predict(tf_keras, x, {1, 5}), {-0.6f, -0.15f, 0, 1, 7}) < 1e-6f);
  CHECK(boost::json::serialize(tf_keras.get_config()).find("\"alpha\":") != std::string::npos);
  CHECK(test::max_abs_diff(predict(test::single_layer("ELU", {{"alpha", 0.5}}, {5}), x, {1, 5}),
                           {float(0.5 * (std::exp(-2.0) - 1)), float(0.5 * (std::exp(-0.5) - 1)), 0, 1, 7}) <
        1e-6f);
  CHECK(error_of([] { test::single_layer("ReLU", {{"threshold", 1.0}}, {5}); }).find("'threshold'") != std::string::npos);
}

TEST_CASE("Softmax normalises over its axis, the last or another") {
  // (1, 2, 2): softmax over axis 1 pairs x[0][j] with x[1][j]
  const std::vector<float> x = {0, 1, 2, 3};
  std::vector<float> y = predict(test::single_layer("Softmax", {{"axis", 1}}, {2, 2}), x, {1, 2, 2});
  const float a = float(1 / (1 + std::exp(2.0)));
  CHECK(test::max_abs_diff(y, {a, a, 1 - a, 1 - a}) < 1e-6f);
  std::vector<float> last = predict(test::single_layer("Softmax", {}, {2, 2}), x, {1, 2, 2});
  const float b = float(1 / (1 + std::exp(1.0)));
  CHECK(test::max_abs_diff(last, {b, 1 - b, b, 1 - b}) < 1e-6f);
  CHECK(error_of([] {
          test::single_layer("Softmax", {{"axis", 0}}, {2, 2});
        }).find("the batch axis") != std::string::npos);
}

TEST_CASE("PReLU learns a slope per element, shared along shared_axes") {
  Sequential model = test::single_layer("PReLU", {{"shared_axes", boost::json::array{1}}}, {3, 2});
  REQUIRE(model.layer(0).weights().size() == 1);
  CHECK(model.layer(0).weights()[0].shape() == Shape{1, 2});  // alpha, shared over axis 1
  model.layer(0).set_weights({Tensor::from_vector({0.5f, 0.25f}, {1, 2})});
  CHECK(predict(model, {-2, -2, 1, -4, 3, 4}, {1, 3, 2}) == std::vector<float>{-1, -0.5f, 1, -1, 3, 4});
  // y = alpha·x on negative inputs: fitting y = 0.3·x there moves alpha to 0.3
  Sequential fit = test::single_layer("PReLU", {}, {1});
  fit.compile({.loss = "mean_squared_error", .optimizer = optimizers::SGD({.learning_rate = 0.1})});
  Tensor x = Tensor::from_vector({-1, -2, -0.5f, -1.5f}, {4, 1});
  fit.fit(x, ops::scale(x, 0.3), {.epochs = 200, .batch_size = 4, .verbose = 0});
  CHECK(fit.layer(0).get_weights()[0].to_vector()[0] == doctest::Approx(0.3).epsilon(1e-3));
}
