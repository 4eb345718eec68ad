// The built-in layers on the reference backend: forward values computed by hand on small inputs,
// output shapes, weights in Keras order, Keras config round trips, and errors for bad configs.
// Shapes are written per sample (no batch axis) unless stated; images are (height, width, channels)
// and Conv2D kernels (kernel_h, kernel_w, in_channels, filters), as in Keras.
#include "support.hpp"

#include <algorithm>
#include <cmath>
#include <set>

using namespace lamina;
using namespace lamina::layers;
using lamina::test::error_of;

namespace {

// A model of the one layer `spec`, taking samples of `input_shape`, on the reference backend.
Sequential single(LayerSpec spec, const Shape& input_shape) {
  set_backend("reference");
  spec.config["input_shape"] = detail::to_json_array(input_shape);
  Sequential model;
  model.add(spec);
  return model;
}

// 1, 2, ..., n
std::vector<float> counting(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(i + 1);
  return v;
}

std::string text(const std::vector<float>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The model's output for a batch of one sample `x` of the model's input shape.
std::vector<float> predict_one(const Model& model, const std::vector<float>& x) {
  Shape shape = model.input_shape();
  shape.insert(shape.begin(), 1);
  return model.predict(Tensor::from_vector(x, shape)).to_vector();
}

void check_values(const std::vector<float>& got, const std::vector<float>& expected,
                  float tolerance = 1e-5f) {
  INFO("got      " << text(got));
  INFO("expected " << text(expected));
  REQUIRE(got.size() == expected.size());
  CHECK(test::max_abs_diff(got, expected) <= tolerance);
}

// Keras' round trip: get_config → from_config → the same config (and the same through JSON text).
void check_config_round_trip(const Model& model) {
  boost::json::object config = model.get_config();
  INFO(boost::json::serialize(config));
  CHECK(Sequential::from_config(config).get_config() == config);
  CHECK(model_from_json(model.to_json()).get_config() == config);
}

std::set<std::string> keys_of(const boost::json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o) keys.insert(std::string(kv.key()));
  return keys;
}

// The message of the error adding `spec` (on samples of `input_shape`) raises; "" if none.
std::string error_adding(const LayerSpec& spec, const Shape& input_shape) {
  return error_of([&] { single(spec, input_shape); });
}

float sigmoid(float x) {
  return float(1.0 / (1.0 + std::exp(-double(x))));
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Dense

TEST_CASE("Dense computes x·W + b then its activation") {
  // W (3, 2) = [[1, -1], [2, 0], [0, 1]], b = [0.5, -3]
  //   x = [1, 2, 3]:  x·W = [5, 2],  + b = [5.5, -1]
  //   x = [-1, 0, 1]: x·W = [-1, 2], + b = [-0.5, -1]
  for (std::string activation : {"linear", "relu", "sigmoid"}) {
    CAPTURE(activation);
    Sequential model = single(Dense(2, {.activation = activation}), {3});
    model.layer(0).set_weights(
        {Tensor::from_vector({1, -1, 2, 0, 0, 1}, {3, 2}), Tensor::from_vector({0.5f, -3}, {2})});
    Tensor y = model.predict(Tensor::from_vector({1, 2, 3, -1, 0, 1}, {2, 3}));
    CHECK(y.shape() == Shape{2, 2});
    std::vector<float> expected = {5.5f, -1, -0.5f, -1};  // linear
    for (float& v : expected)
      v = activation == "relu" ? std::max(v, 0.0f) : activation == "sigmoid" ? sigmoid(v) : v;
    check_values(y.to_vector(), expected);
  }
}

TEST_CASE("Dense without bias computes x·W") {
  Sequential model = single(Dense(2, {.use_bias = false}), {3});
  model.layer(0).set_weights({Tensor::from_vector({1, -1, 2, 0, 0, 1}, {3, 2})});
  check_values(predict_one(model, {1, 2, 3}), {5, 2});
}

TEST_CASE("Dense on samples of rank 2 acts on the last axis and keeps the others") {
  // input (2, 3) per sample → output (2, 2): each row of the sample goes through the same W, b
  Sequential model = single(Dense(2), {2, 3});
  CHECK(model.output_shape() == Shape{2, 2});
  model.layer(0).set_weights(
      {Tensor::from_vector({1, -1, 2, 0, 0, 1}, {3, 2}), Tensor::from_vector({0.5f, -3}, {2})});
  check_values(predict_one(model, {1, 2, 3, -1, 0, 1}), {5.5f, -1, -0.5f, -1});
}

TEST_CASE("Dense has the weights kernel (inputs, units) and bias (units), in that order") {
  Sequential model = single(Dense(4), {3});
  const Layer& dense = model.layer(0);
  CHECK(dense.weight_names() == std::vector<std::string>{"kernel", "bias"});
  REQUIRE(dense.get_weights().size() == 2);
  CHECK(dense.get_weights()[0].shape() == Shape{3, 4});
  CHECK(dense.get_weights()[1].shape() == Shape{4});
  CHECK(dense.count_params() == 3 * 4 + 4);
  CHECK(dense.get_weights()[1].to_vector() == std::vector<float>(4, 0.0f));  // bias_initializer "zeros"

  Sequential no_bias = single(Dense(4, {.use_bias = false}), {3});
  CHECK(no_bias.layer(0).weight_names() == std::vector<std::string>{"kernel"});
  CHECK(no_bias.layer(0).count_params() == 12);
}

TEST_CASE("set_weights refuses weights of the wrong count or shape, naming the layer and the weight") {
  Sequential model = single(Dense(2, {.name = "hidden"}), {3});
  CHECK(error_of([&] {
          model.layer(0).set_weights({Tensor::zeros({3, 2})});
        }) == "layer 'hidden' (Dense) has 2 weights, set_weights got 1");
  CHECK(error_of([&] {
          model.layer(0).set_weights({Tensor::zeros({2, 3}), Tensor::zeros({2})});
        }) == "layer 'hidden': weight 'kernel' has shape (3, 2), set_weights got (2, 3)");
}

// ------------------------------------------------------------------------------------------------
// Activation, Flatten, Dropout, Reshape

TEST_CASE(
    "Activation applies elu, selu, swish/silu, softplus, softsign, exponential, gelu and hard_sigmoid") {
  const std::vector<double> x = {-30, -2, 0, 1, 3, 40};
  auto each = [&](double (*f)(double)) {
    std::vector<float> out;
    for (double v : x) out.push_back(float(f(v)));
    return out;
  };
  struct Case {
    std::string name;
    std::vector<float> expected;
  };
  std::vector<Case> cases = {
      {"elu", each([](double v) { return v > 0 ? v : std::exp(v) - 1; })},
      {"selu", each([](double v) {  // Keras' alpha and scale
         return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (std::exp(v) - 1));
       })},
      {"swish", each([](double v) { return v / (1 + std::exp(-v)); })},
      {"silu", each([](double v) { return v / (1 + std::exp(-v)); })},
      {"softplus", each([](double v) { return std::log1p(std::exp(-std::fabs(v))) + std::max(v, 0.0); })},
      {"softsign", each([](double v) { return v / (1 + std::fabs(v)); })},
      {"exponential", each([](double v) { return std::exp(std::min(v, 20.0)); })},
      // Keras' default GELU is the exact one (approximate=False)
      {"gelu", each([](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); })},
      // Keras 3's relu6(x + 3) / 6 (tf_keras 2.x: clip(0.2x + 0.5, 0, 1), 0.7 at x = 1 where this is 2/3)
      {"hard_sigmoid", each([](double v) { return std::min(std::max(v + 3, 0.0), 6.0) / 6; })},
  };
  std::vector<float> input(x.begin(), x.end());
  for (const Case& c : cases) {
    CAPTURE(c.name);
    bool bounded = c.name != "exponential";
    std::vector<float> in = input;
    if (!bounded) in.back() = 20;  // e^40 does not fit a float's relative tolerance check below
    Sequential model = single(Activation(c.name), {6});
    std::vector<float> got = predict_one(model, in), want = c.expected;
    for (size_t i = 0; i < got.size(); ++i)
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1.0));
    CHECK(model.get_config().at("layers").as_array().back().at("config").at("activation") == c.name.c_str());
  }
}

TEST_CASE("Activation applies linear, relu, sigmoid, tanh and softmax by name") {
  std::vector<float> x = {-2, 0, 1, 3};
  float sum_exp = float(std::exp(-2.0) + std::exp(0.0) + std::exp(1.0) + std::exp(3.0));
  struct Case {
    std::string name;
    std::vector<float> expected;
  };
  std::vector<Case> cases = {
      {"linear", x},
      {"relu", {0, 0, 1, 3}},
      {"sigmoid", {sigmoid(-2), 0.5f, sigmoid(1), sigmoid(3)}},
      {"tanh", {std::tanh(-2.0f), 0, std::tanh(1.0f), std::tanh(3.0f)}},
      {"softmax",
       {std::exp(-2.0f) / sum_exp, 1 / sum_exp, std::exp(1.0f) / sum_exp, std::exp(3.0f) / sum_exp}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Sequential model = single(Activation(c.name), {4});
    CHECK(model.output_shape() == Shape{4});
    CHECK(model.layer(0).weights().empty());
    check_values(predict_one(model, x), c.expected, 1e-6f);
  }
}

TEST_CASE("Flatten keeps the batch axis and lays each sample out in row-major order") {
  Sequential model = single(Flatten(), {2, 2, 3});
  CHECK(model.output_shape() == Shape{12});
  Tensor x = Tensor::from_vector(counting(24), {2, 2, 2, 3});  // two samples
  Tensor y = model.predict(x);
  CHECK(y.shape() == Shape{2, 12});
  CHECK(y.to_vector() == counting(24));
}

TEST_CASE("Dropout passes inputs through in predict") {
  Sequential model = single(Dropout(0.5), {6});
  CHECK(model.output_shape() == Shape{6});
  CHECK(predict_one(model, counting(6)) == counting(6));
}

TEST_CASE("Dropout in training zeroes about `rate` of the inputs and scales the rest by 1 / (1 - rate)") {
  Sequential model = single(Dropout(0.25), {1000});
  Tensor x = Tensor::full({1, 1000}, 2.0f);
  std::vector<float> y = model.layer(0).call(x, true, 1234).to_vector();
  int64_t dropped = std::count(y.begin(), y.end(), 0.0f);
  int64_t kept =
      std::count_if(y.begin(), y.end(), [](float v) { return std::fabs(v - 2.0f / 0.75f) < 1e-5f; });
  CHECK(dropped + kept == 1000);
  CHECK(dropped > 180);  // 250 expected
  CHECK(dropped < 320);
  // the same seed gives the same mask, another seed another one
  CHECK(model.layer(0).call(x, true, 1234).to_vector() == y);
  CHECK(model.layer(0).call(x, true, 4321).to_vector() != y);
}

TEST_CASE("SpatialDropout2D drops whole feature maps: one mask value per sample and channel") {
  Sequential model = single(SpatialDropout2D(0.5), {4, 5, 64});
  Tensor x = Tensor::full({3, 4, 5, 64}, 1.0f);
  std::vector<float> y = model.layer(0).call(x, true, 77).to_vector();
  int64_t dropped_maps = 0;
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 64; ++c) {
      const float first = y[size_t(n * 4 * 5 * 64 + c)];
      CHECK((first == 0.0f || first == 2.0f));
      for (int64_t p = 1; p < 4 * 5; ++p) CHECK(y[size_t((n * 20 + p) * 64 + c)] == first);  // the whole map
      dropped_maps += first == 0.0f;
    }
  CHECK(dropped_maps > 60);  // 96 of 192 expected
  CHECK(dropped_maps < 132);
  CHECK(predict_one(model, std::vector<float>(4 * 5 * 64, 1.0f)) == std::vector<float>(4 * 5 * 64, 1.0f));
  CHECK(test::error_of([] {
          single(SpatialDropout2D(0.5), {10, 3});
        }).find("expects inputs of rank 4") != std::string::npos);
  CHECK(
      test::error_of([] {
        single(LayerSpec{"SpatialDropout2D", {{"rate", 0.5}, {"data_format", "channels_first"}}}, {3, 4, 4});
      }).find("channels_last") != std::string::npos);
}

TEST_CASE("SpatialDropout1D shares a channel's mask value along the steps; Dropout's noise_shape likewise") {
  Tensor x = Tensor::full({2, 30, 8}, 1.0f);
  std::vector<float> y = single(SpatialDropout1D(0.5), {30, 8}).layer(0).call(x, true, 5).to_vector();
  boost::json::array noise{nullptr, 1, nullptr};  // Keras' noise_shape=(None, 1, None)
  Sequential shaped = single(LayerSpec{"Dropout", {{"rate", 0.5}, {"noise_shape", noise}}}, {30, 8});
  std::vector<float> z = shaped.layer(0).call(x, true, 5).to_vector();
  for (const std::vector<float>* v : {&y, &z})
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t t = 1; t < 30; ++t)
        for (int64_t c = 0; c < 8; ++c)
          CHECK((*v)[size_t((n * 30 + t) * 8 + c)] == (*v)[size_t(n * 30 * 8 + c)]);
  CHECK(shaped.layer(0).get_config().at("noise_shape") == noise);  // written back as read
  boost::json::array wrong{nullptr, 3, nullptr};
  CHECK(test::error_of([&] {
          single(LayerSpec{"Dropout", {{"rate", 0.5}, {"noise_shape", wrong}}}, {30, 8});
        }).find("noise_shape entry 1 is 3; it must be 1, null or the input's size 30") != std::string::npos);
}

namespace {
struct Moments {
  double mean = 0.0, stddev = 0.0;
};
Moments moments_of(const std::vector<float>& v) {
  Moments m;
  for (float x : v) m.mean += x;
  m.mean /= double(v.size());
  for (float x : v) m.stddev += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(m.stddev / double(v.size()));
  return m;
}
}  // namespace

TEST_CASE("random_normal draws mean + stddev · N(0, 1), the same draws for the same seed") {
  const std::vector<float> y = ops::random_normal({200, 500}, 0.5, 2.0, 99).to_vector();
  const Moments m = moments_of(y);
  CHECK(std::fabs(m.mean - 0.5) < 0.03);  // 100,000 draws: the standard error is 0.0063
  CHECK(std::fabs(m.stddev - 2.0) < 0.03);
  int64_t beyond_two_sigma =
      std::count_if(y.begin(), y.end(), [](float v) { return std::fabs(v - 0.5f) > 4.0f; });
  CHECK(beyond_two_sigma > 4100);  // 4.55% of a normal distribution lies beyond 2σ
  CHECK(beyond_two_sigma < 5000);
  CHECK(*std::max_element(y.begin(), y.end()) <= 0.5f + 2.0f * 5.78f);  // 24-bit uniforms bound |n|
  CHECK(ops::random_normal({200, 500}, 0.5, 2.0, 99).to_vector() == y);
  CHECK(ops::random_normal({200, 500}, 0.5, 2.0, 100).to_vector() != y);
  CHECK(test::error_of([] { ops::random_normal({3}, 0.0, -1.0, 1); }).find("stddev must be >= 0") !=
        std::string::npos);
}

TEST_CASE(
    "GaussianNoise adds N(0, stddev²) and GaussianDropout multiplies by N(1, rate/(1-rate)), in training "
    "only") {
  Tensor x = Tensor::full({4, 10000}, 3.0f);
  Sequential noise = single(GaussianNoise(0.5), {10000});
  Moments m = moments_of(noise.layer(0).call(x, true, 11).to_vector());
  CHECK(std::fabs(m.mean - 3.0) < 0.02);
  CHECK(std::fabs(m.stddev - 0.5) < 0.02);
  Sequential dropout = single(GaussianDropout(0.2), {10000});
  m = moments_of(dropout.layer(0).call(x, true, 11).to_vector());
  CHECK(std::fabs(m.mean - 3.0) < 0.03);
  CHECK(std::fabs(m.stddev - 3.0 * std::sqrt(0.2 / 0.8)) < 0.03);  // 1.5
  for (Sequential* model : {&noise, &dropout}) {
    CHECK(model->layer(0).call(x, false, 11).to_vector() == x.to_vector());  // inference: unchanged
    CHECK(model->layer(0).call(x, true, 11).to_vector() != model->layer(0).call(x, true, 12).to_vector());
  }
  // Keras 3's configs, read and written back
  Sequential keras =
      single(LayerSpec{"GaussianNoise", {{"name", "gaussian_noise"}, {"stddev", 0.1}, {"seed", 3}}}, {10000});
  CHECK(keras.layer(0).get_config().at("stddev") == 0.1);
  CHECK(keras.layer(0).get_config().at("seed") == 3);
  CHECK(single(GaussianDropout(0.2), {4}).layer(0).get_config().at("rate") == 0.2);
  CHECK(
      error_adding(LayerSpec{"GaussianDropout", {{"rate", 1.0}}}, {4}) ==
      "GaussianDropout: config key 'rate' must be in [0, 1), got 1 (in GaussianDropout 'gaussian_dropout')");
  CHECK(error_adding(LayerSpec{"GaussianNoise", {{"stddev", -0.1}}}, {4}) ==
        "GaussianNoise: config key 'stddev' must be >= 0, got -0.1 (in GaussianNoise 'gaussian_noise')");
  CHECK(error_adding(LayerSpec{"GaussianNoise", boost::json::object{}}, {4})
            .find("config key 'stddev' is missing") != std::string::npos);
}

TEST_CASE("AlphaDropout keeps a standard normal input's mean and variance, as Keras' formula does") {
  const Tensor x = ops::random_normal({8, 20000}, 0.0, 1.0, 5);
  Sequential model = single(AlphaDropout(0.2), {20000});
  const std::vector<float> y = model.layer(0).call(x, true, 21).to_vector();
  const Moments m = moments_of(y);
  CHECK(std::fabs(m.mean) < 0.02);
  CHECK(std::fabs(m.stddev - 1.0) < 0.02);
  // a dropped unit takes a·α' + b, the same value everywhere
  const double alpha_p = -1.6732632423543772 * 1.0507009873554805;
  const double a = 1.0 / std::sqrt(0.8 * (1.0 + 0.2 * alpha_p * alpha_p)),
               dropped = a * alpha_p - a * alpha_p * 0.2;
  int64_t n_dropped =
      std::count_if(y.begin(), y.end(), [&](float v) { return std::fabs(v - dropped) < 1e-5; });
  CHECK(n_dropped > 30000);  // 20% of 160,000
  CHECK(n_dropped < 34000);
  CHECK(model.layer(0).call(x, false, 21).to_vector() == x.to_vector());
}

TEST_CASE("Reshape gives each sample the target shape, inferring one -1 axis") {
  Sequential model = single(Reshape({-1, 3}), {6});
  CHECK(model.output_shape() == Shape{2, 3});
  Tensor y = model.predict(Tensor::from_vector(counting(12), {2, 6}));
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(y.to_vector() == counting(12));
}

// ------------------------------------------------------------------------------------------------
// Conv2D: y[i, j, o] = b[o] + Σ x[i·sh + di − top, j·sw + dj − left, c] · w[di, dj, c, o]

TEST_CASE("Conv2D with padding valid slides the kernel over the image only") {
  // x (3, 3, 2) = 1..18 in (row, column, channel) order; w (2, 2, 2, 2) as listed; b = [0.5, -1]
  //   y[0, 0, 0] = 1·1 + 2·2 + 3·0 + 4·(−2) + 7·1 + 8·(−1) + 9·0 + 10·1 + 0.5 = 6.5
  Sequential model = single(Conv2D(2, {2, 2}), {3, 3, 2});
  CHECK(model.output_shape() == Shape{2, 2, 2});
  model.layer(0).set_weights(
      {Tensor::from_vector({1, -1, 2, 0, 0, 3, -2, 1, 1, 1, -1, 2, 0, -3, 1, 1}, {2, 2, 2, 2}),
       Tensor::from_vector({0.5f, -1}, {2})});
  check_values(predict_one(model, counting(18)), {6.5f, 17, 10.5f, 25, 18.5f, 41, 22.5f, 49});
}

TEST_CASE("Conv2D with padding same zero-pads so the output keeps the input's size") {
  // x (3, 3, 1) = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]; a 3x3 kernel, one cell of padding all round;
  // w = [[1, 2, 0], [0, 0, 0], [0, 0, -1]]: y[i, j] = x[i−1, j−1] + 2·x[i−1, j] − x[i+1, j+1]
  //   y[0, 0] = 0 + 0 − 5 = −5,  y[1, 1] = 1 + 4 − 9 = −4,  y[2, 2] = 5 + 12 − 0 = 17
  Sequential model = single(Conv2D(1, {3, 3}, {.padding = "same", .use_bias = false}), {3, 3, 1});
  CHECK(model.output_shape() == Shape{3, 3, 1});
  model.layer(0).set_weights({Tensor::from_vector({1, 2, 0, 0, 0, 0, 0, 0, -1}, {3, 3, 1, 1})});
  check_values(predict_one(model, counting(9)), {-5, -6, 0, -6, -4, 8, 8, 14, 17});
}

TEST_CASE("Conv2D with strides 2 and padding valid skips every other window") {
  // x (5, 5, 1) = 1..25, a 3x3 kernel of ones: windows start at rows and columns 0 and 2
  //   y[0, 0] = 1+2+3 + 6+7+8 + 11+12+13 = 63
  Sequential model = single(Conv2D(1, {3, 3}, {.strides = {2, 2}, .use_bias = false}), {5, 5, 1});
  CHECK(model.output_shape() == Shape{2, 2, 1});
  model.layer(0).set_weights({Tensor::full({3, 3, 1, 1}, 1.0f)});
  check_values(predict_one(model, counting(25)), {63, 81, 153, 171});
}

TEST_CASE("Conv2D with strides 2 and padding same puts the odd padding row and column after, as TensorFlow") {
  // x (4, 4, 1) = 1..16, a 3x3 kernel of ones, strides 2: ceil(4 / 2) = 2 outputs per axis need
  // (2 − 1)·2 + 3 − 4 = 1 cell of padding, which goes to the bottom and the right.
  //   y[0, 0] = 1+2+3 + 5+6+7 + 9+10+11 = 54,  y[1, 1] = 11+12 + 15+16 = 54
  // (padding at the top and left instead would give 14, 30, 57, 99)
  Sequential model =
      single(Conv2D(1, {3, 3}, {.strides = {2, 2}, .padding = "same", .use_bias = false}), {4, 4, 1});
  CHECK(model.output_shape() == Shape{2, 2, 1});
  model.layer(0).set_weights({Tensor::full({3, 3, 1, 1}, 1.0f)});
  check_values(predict_one(model, counting(16)), {54, 45, 72, 54});
}

TEST_CASE("Conv2D has the weights kernel (kernel_h, kernel_w, in_channels, filters) and bias (filters)") {
  Sequential model = single(Conv2D(8, {5, 3}), {10, 10, 3});
  const Layer& conv = model.layer(0);
  CHECK(conv.weight_names() == std::vector<std::string>{"kernel", "bias"});
  CHECK(conv.get_weights()[0].shape() == Shape{5, 3, 3, 8});
  CHECK(conv.get_weights()[1].shape() == Shape{8});
  CHECK(conv.count_params() == 5 * 3 * 3 * 8 + 8);
  CHECK(model.output_shape() == Shape{6, 8, 8});
}

// ------------------------------------------------------------------------------------------------
// Pooling

TEST_CASE("MaxPooling2D takes the maximum of each window, channel by channel") {
  // x (4, 4, 2): channel 0 = 1..16, channel 1 = −(1..16); pool 2x2, strides 2
  std::vector<float> x;
  for (float v : counting(16)) x.insert(x.end(), {v, -v});
  Sequential model = single(MaxPooling2D({2, 2}), {4, 4, 2});
  CHECK(model.output_shape() == Shape{2, 2, 2});
  CHECK(model.layer(0).weights().empty());
  check_values(predict_one(model, x), {6, -1, 8, -3, 14, -9, 16, -11});
}

TEST_CASE("MaxPooling2D with padding same never lets a padded cell win") {
  // x (3, 3, 1) = −1..−9, pool 2x2, strides 2: padding after; a padded 0 would beat every value
  std::vector<float> x = counting(9);
  for (float& v : x) v = -v;
  Sequential model = single(MaxPooling2D({2, 2}, {.padding = "same"}), {3, 3, 1});
  CHECK(model.output_shape() == Shape{2, 2, 1});
  check_values(predict_one(model, x), {-1, -3, -7, -9});
}

TEST_CASE("AveragePooling2D averages each window") {
  // x (4, 4, 1) = 1..16: (1+2+5+6)/4 = 3.5, ...
  Sequential model = single(AveragePooling2D({2, 2}), {4, 4, 1});
  CHECK(model.output_shape() == Shape{2, 2, 1});
  check_values(predict_one(model, counting(16)), {3.5f, 5.5f, 11.5f, 13.5f});
}

TEST_CASE("AveragePooling2D with padding same averages only the cells inside the input") {
  // x (3, 3, 1) = 1..9, pool 2x2, strides 2: windows {1,2,4,5}, {3,6}, {7,8}, {9}
  Sequential model = single(AveragePooling2D({2, 2}, {.padding = "same"}), {3, 3, 1});
  check_values(predict_one(model, counting(9)), {3, 4.5f, 7.5f, 9});
}

TEST_CASE("pooling strides default to the pool size") {
  for (const char* cls : {"MaxPooling2D", "AveragePooling2D"}) {
    CAPTURE(cls);
    Sequential model = single(LayerSpec{cls, {{"pool_size", {3, 3}}, {"strides", nullptr}}}, {9, 9, 2});
    CHECK(model.output_shape() == Shape{3, 3, 2});
    boost::json::object config = model.layer(0).get_config();
    CHECK(config.at("strides") == boost::json::array{3, 3});
  }
}

// ------------------------------------------------------------------------------------------------
// InputLayer

TEST_CASE("InputLayer gives the model its input shape and is written first in the model's config") {
  set_backend("reference");
  Sequential model;
  model.add(InputLayer({2, 3}, "pixels"));
  model.add(Dense(4));
  CHECK(model.size() == 1);  // like Keras' model.layers, the input is not a layer
  CHECK(model.input_shape() == Shape{2, 3});
  CHECK(model.layer(0).input_shape() == Shape{2, 3});
  CHECK(model.output_shape() == Shape{2, 4});
  boost::json::object config = model.get_config();
  const boost::json::array& layers = config.at("layers").as_array();
  REQUIRE(layers.size() == 2);
  CHECK(layers[0].at("class_name") == "InputLayer");
  CHECK(layers[0].at("config").at("batch_input_shape") == boost::json::array{nullptr, 2, 3});
  check_config_round_trip(model);
}

TEST_CASE("an InputLayer after another layer is refused") {
  set_backend("reference");
  Sequential model;
  model.add(Dense(2, {.input_dim = 3}));
  CHECK(error_of([&] { model.add(InputLayer({3})); }) ==
        "InputLayer layer #2: an InputLayer must come first");
}

// ------------------------------------------------------------------------------------------------
// Output shapes and configs of every layer

TEST_CASE("each layer reports its output shape per sample") {
  struct Case {
    LayerSpec layer;
    Shape input, output;
  };
  std::vector<Case> cases = {
      {Dense(10), {784}, {10}},
      {Dense(10), {5, 7}, {5, 10}},
      {Activation("softmax"), {3, 4}, {3, 4}},
      {Flatten(), {3, 4, 5}, {60}},
      {Dropout(0.3), {7, 2}, {7, 2}},
      {Reshape({28, 28, 1}), {784}, {28, 28, 1}},
      {Reshape({4, -1}), {2, 6}, {4, 3}},
      {Conv2D(32, {5, 5}), {28, 28, 1}, {24, 24, 32}},
      {Conv2D(4, {3, 3}, {.padding = "same"}), {7, 9, 2}, {7, 9, 4}},
      {Conv2D(4, {3, 3}, {.strides = {2, 2}}), {7, 8, 1}, {3, 3, 4}},
      {Conv2D(4, {3, 3}, {.strides = {2, 2}, .padding = "same"}), {7, 8, 1}, {4, 4, 4}},
      {Conv2D(4, {1, 3}, {.strides = {1, 2}}), {5, 5, 3}, {5, 2, 4}},
      {MaxPooling2D({2, 2}), {5, 5, 3}, {2, 2, 3}},
      {MaxPooling2D({2, 2}, {.padding = "same"}), {5, 5, 3}, {3, 3, 3}},
      {MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{1, 1}}), {5, 6, 1}, {3, 4, 1}},
      {AveragePooling2D({2, 2}), {24, 24, 8}, {12, 12, 8}},
      {AveragePooling2D({3, 3}, {.padding = "same"}), {7, 7, 1}, {3, 3, 1}},
  };
  for (const Case& c : cases) {
    CAPTURE(boost::json::serialize(c.layer.config));
    CAPTURE(shape_to_string(c.input));
    Sequential model = single(c.layer, c.input);
    CHECK(shape_to_string(model.output_shape()) == shape_to_string(c.output));
    Shape batch = c.input;
    batch.insert(batch.begin(), 2);
    Shape expected = c.output;
    expected.insert(expected.begin(), 2);
    CHECK(model.predict(Tensor::zeros(batch)).shape() == expected);
  }
}

TEST_CASE("each layer's config has Keras' keys and survives get_config → from_config") {
  std::set<std::string> common = {"name", "trainable", "dtype"};
  std::set<std::string> regularized = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                       "kernel_constraint", "bias_constraint"};
  auto with = [](std::set<std::string> a, const std::set<std::string>& b) {
    a.insert(b.begin(), b.end());
    return a;
  };
  struct Case {
    LayerSpec layer;
    Shape input;
    std::set<std::string> keys;
  };
  std::vector<Case> cases = {
      {Dense(3, {.activation = "tanh", .use_bias = false, .kernel_initializer = "he_normal", .name = "d"}),
       {4},
       with(with(common, regularized),
            {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer"})},
      {Activation("relu"), {4}, with(common, {"activation"})},
      {Flatten(), {2, 2}, with(common, {"data_format"})},
      {Dropout(0.4), {4}, with(common, {"rate", "noise_shape", "seed"})},
      {Reshape({2, -1}), {4}, with(common, {"target_shape"})},
      {Conv2D(2, {3, 2}, {.strides = {2, 1}, .padding = "same", .activation = "relu"}),
       {6, 6, 1},
       with(with(common, regularized),
            {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
             "use_bias", "kernel_initializer", "bias_initializer"})},
      {MaxPooling2D({3, 2}, {.strides = std::array<int64_t, 2>{1, 2}}),
       {6, 6, 1},
       with(common, {"pool_size", "strides", "padding", "data_format"})},
      {AveragePooling2D({2, 2}, {.padding = "same"}),
       {5, 5, 1},
       with(common, {"pool_size", "strides", "padding", "data_format"})},
  };
  for (const Case& c : cases) {
    CAPTURE(c.layer.class_name);
    Sequential model = single(c.layer, c.input);
    boost::json::object config = model.layer(0).get_config();
    CHECK(keys_of(config) == c.keys);
    for (const auto& kv : c.layer.config)  // every key given comes back with its value
      if (kv.key() != "input_shape")
        CHECK(boost::json::serialize(config.at(kv.key())) == boost::json::serialize(kv.value()));
    check_config_round_trip(model);
  }
}

TEST_CASE("a model of every built-in layer survives get_config → from_config with the same output") {
  set_backend("reference");
  set_random_seed(3);
  Sequential model;
  model.add(InputLayer({8, 8, 1}));
  model.add(Conv2D(3, {3, 3}, {.padding = "same", .activation = "relu"}));
  model.add(MaxPooling2D({2, 2}));
  model.add(Conv2D(4, {3, 3}, {.strides = {2, 2}}));
  model.add(AveragePooling2D({1, 1}));
  model.add(Flatten());
  model.add(Dropout(0.5));
  model.add(Dense(6, {.activation = "sigmoid"}));
  model.add(Reshape({2, 3}));
  model.add(Activation("softmax"));
  check_config_round_trip(model);

  Sequential copy = Sequential::from_config(model.get_config());
  for (size_t i = 0; i < model.size(); ++i) copy.layer(i).set_weights(model.layer(i).get_weights());
  Tensor x = test::random_tensor({2, 8, 8, 1}, 11);
  CHECK(copy.predict(x).to_vector() == model.predict(x).to_vector());
  CHECK(copy.output_shape() == Shape{2, 3});
}

// ------------------------------------------------------------------------------------------------
// Bad configs: the message names the layer and the key, and says what to do

TEST_CASE("a Dense without units is refused, naming the layer and the key") {
  CHECK(error_adding(LayerSpec{"Dense", {{"name", "hidden"}}}, {3}) ==
        "Dense 'hidden': config key 'units' is missing; give the number of outputs, e.g. 10 (in Dense "
        "'hidden')");
  CHECK(error_adding(LayerSpec{"Dense", {{"units", 0}}}, {3}) ==
        "Dense: config key 'units' must be a positive integer, got 0 (in Dense 'dense')");
}

TEST_CASE("an unknown activation is refused, naming the layer, the key and the activations there are") {
  const std::string known =
      "use one of linear, relu, sigmoid, tanh, softmax, elu, selu, swish, silu, softplus, softsign, "
      "exponential, gelu, hard_sigmoid";
  CHECK(error_adding(Dense(3, {.activation = "swishy"}), {3}) ==
        "Dense: config key 'activation' is 'swishy', which lamina does not provide; " + known +
            " (in Dense 'dense')");
  CHECK(error_adding(Activation("gelu_tanh"), {3}) ==
        "Activation: config key 'activation' is 'gelu_tanh', which lamina does "
        "not provide; " +
            known + " (in Activation 'activation')");
  CHECK(error_adding(Conv2D(1, {3, 3}, {.activation = "hard_swish"}), {5, 5, 1})
            .find("Conv2D: config key 'activation' is 'hard_swish'") == 0);
  CHECK(error_adding(LayerSpec{"Activation", {}}, {3}) ==
        "Activation: config key 'activation' is missing; give an activation name such as \"relu\" (in "
        "Activation "
        "'activation')");
}

TEST_CASE("a bad padding is refused, naming the layer, the key and the choices") {
  CHECK(error_adding(Conv2D(2, {3, 3}, {.padding = "full"}), {5, 5, 1}) ==
        "Conv2D: config key 'padding' is 'full'; use one of 'valid', 'same' (in Conv2D 'conv2d')");
  CHECK(error_adding(MaxPooling2D({2, 2}, {.padding = "causal", .name = "pool"}), {5, 5, 1}) ==
        "MaxPooling2D 'pool': config key 'padding' is 'causal'; use one of 'valid', 'same' (in MaxPooling2D "
        "'pool')");
  CHECK(error_adding(AveragePooling2D({2, 2}, {.padding = "reflect"}), {5, 5, 1})
            .find("'padding' is 'reflect'") != std::string::npos);
}

TEST_CASE("other bad layer configs and inputs are refused, naming the layer and the key") {
  struct Case {
    LayerSpec layer;
    Shape input;
    std::string message;
  };
  std::vector<Case> cases = {
      {LayerSpec{"Conv2D", {{"kernel_size", 3}}},
       {5, 5, 1},
       "Conv2D: config key 'filters' is missing; give the number of output channels, e.g. 32 (in Conv2D "
       "'conv2d')"},
      {LayerSpec{"Conv2D", {{"filters", 3}}},
       {5, 5, 1},
       "Conv2D: config key 'kernel_size' is missing; give the window size, e.g. 3 or [3, 3] (in Conv2D "
       "'conv2d')"},
      {LayerSpec{"Conv2D", {{"filters", 3}, {"kernel_size", {3, 0}}}},
       {5, 5, 1},
       "Conv2D: config key 'kernel_size' must be positive, got [3,0] (in Conv2D 'conv2d')"},
      {Conv2D(2, {3, 3}),
       {5, 5},
       "Conv2D: expects inputs of shape (height, width, channels) per sample, got (5, 5); add a Reshape "
       "layer "
       "before it (e.g. target_shape [28, 28, 1]) (in Conv2D 'conv2d', input shape (5, 5))"},
      {Conv2D(2, {7, 7}),
       {5, 5, 1},
       "Conv2D: the input's height x width 5x5 is smaller than the kernel 7x7 under padding \"valid\"; use "
       "padding "
       "\"same\", a smaller kernel or a larger input (in Conv2D 'conv2d', input shape (5, 5, 1))"},
      {MaxPooling2D({3, 3}),
       {2, 2, 1},
       "MaxPooling2D: the input's height x width 2x2 is smaller than the pool 3x3 under padding \"valid\"; "
       "use "
       "padding \"same\", a smaller pool or a larger input (in MaxPooling2D 'max_pooling2d', input shape (2, "
       "2, 1))"},
      {Dropout(1.0), {3}, "Dropout: config key 'rate' must be in [0, 1), got 1 (in Dropout 'dropout')"},
      {LayerSpec{"Dropout", {}},
       {3},
       "Dropout: config key 'rate' is missing; give the fraction of inputs to drop, e.g. 0.5 (in Dropout "
       "'dropout')"},
      {Reshape({4}),
       {6},
       "Reshape: cannot reshape input (6,) (6 elements per sample) to target_shape (4,); the target must "
       "hold the "
       "same number of elements (or use -1 for one axis to infer it) (in Reshape 'reshape', input shape "
       "(6,))"},
      {Reshape({-1, -1}),
       {6},
       "Reshape: config key 'target_shape' must hold positive integers and at most one -1, got [-1,-1] (in "
       "Reshape "
       "'reshape')"},
      {LayerSpec{"Dense", {{"units", 2}, {"use_bias", "yes"}}},
       {3},
       "Dense: config key 'use_bias' must be true or false (in Dense 'dense')"},
  };
  for (const Case& c : cases) {
    CAPTURE(boost::json::serialize(c.layer.config));
    CHECK(error_adding(c.layer, c.input) == c.message);
  }
}

TEST_CASE("a failed add leaves the model as it was") {
  Sequential model = single(Dense(4, {.activation = "relu"}), {3});
  CHECK_FALSE(error_of([&] { model.add(Conv2D(2, {3, 3})); }).empty());  // Dense gives (4,), not an image
  CHECK(model.size() == 1);
  model.add(Dense(2));
  CHECK(model.output_shape() == Shape{2});
  CHECK(model.layer(1).name() == "dense_1");
}
