// Keras' reshaping layers (ZeroPadding2D, Cropping2D, UpSampling2D, Permute, RepeatVector) and the
// global pooling layers, on small inputs whose outputs are written out by hand; their config keys in
// every spelling Keras writes, their errors, and a small model with them that trains.
#include "support.hpp"

#include <map>

using namespace lamina;
using lamina::test::error_of;

namespace {

// 1, 2, ..., n as one sample of `shape` (a batch of one).
Tensor counting(const Shape& shape) {
  std::vector<float> v(size_t(shape_size(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i + 1);
  Shape batch = shape;
  batch.insert(batch.begin(), 1);
  return Tensor::from_vector(v, batch);
}

}  // namespace

TEST_CASE("ZeroPadding2D adds zero rows and columns, in each of Keras' spellings of padding") {
  // a 2x2 image of one channel, padded by 1 on top, 0 below, 2 left, 1 right
  Sequential model = test::single_layer("ZeroPadding2D", {{"padding", boost::json::array{{1, 0}, {2, 1}}}}, {2, 2, 1});
  CHECK(model.output_shape() == Shape{3, 5, 1});
  CHECK(model.predict(counting({2, 2, 1})).to_vector() ==
        std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3, 4, 0});
  CHECK(test::single_layer("ZeroPadding2D", {{"padding", 2}}, {2, 2, 1}).output_shape() == Shape{6, 6, 1});
  CHECK(test::single_layer("ZeroPadding2D", {{"padding", boost::json::array{1, 3}}}, {2, 2, 1}).output_shape() ==
        Shape{4, 8, 1});
  CHECK(test::single_layer("ZeroPadding2D", {}, {2, 2, 1}).output_shape() == Shape{4, 4, 1});  // Keras' default (1, 1)
  CHECK(boost::json::serialize(model.get_config()).find("\"padding\":[[1,0],[2,1]]") != std::string::npos);
}

TEST_CASE("Cropping2D removes rows and columns from each side") {
  Sequential model = test::single_layer("Cropping2D", {{"cropping", boost::json::array{{1, 0}, {0, 2}}}}, {3, 4, 1});
  CHECK(model.output_shape() == Shape{2, 2, 1});
  CHECK(model.predict(counting({3, 4, 1})).to_vector() == std::vector<float>{5, 6, 9, 10});
  CHECK(error_of([] {
          test::single_layer("Cropping2D", {{"cropping", 2}}, {3, 4, 1});
        }).find("leaves nothing") != std::string::npos);
}

TEST_CASE("UpSampling2D repeats each pixel size[0] times down and size[1] times across") {
  Sequential model = test::single_layer("UpSampling2D", {{"size", boost::json::array{2, 3}}}, {2, 2, 1});
  CHECK(model.output_shape() == Shape{4, 6, 1});
  CHECK(model.predict(counting({2, 2, 1})).to_vector() ==
        std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  CHECK(error_of([] {
          test::single_layer("UpSampling2D", {{"interpolation", "bicubic"}}, {2, 2, 1});
        }) ==
        "UpSampling2D: config key 'interpolation' is 'bicubic', which lamina does not provide yet; use "
        "\"nearest\" or \"bilinear\" (in UpSampling2D 'up_sampling2d')");
  CHECK(error_of([] {
          test::single_layer("UpSampling2D", {{"interpolation", "linear"}}, {2, 2, 1});
        }).find("UpSampling2D: config key 'interpolation' is 'linear'; use one of 'nearest', 'bilinear'") ==
        0);
}

// Half-pixel centres, as tf.image.resize and jax.image.resize (Keras 3's ops.image.resize) compute:
// output i of an axis stretched s times reads the input at (i + 1/2)/s − 1/2, edges clamped. Along
// an axis holding [a, b]: s = 2 gives [a, ¾a + ¼b, ¼a + ¾b, b]; s = 3 gives [a, a, ⅔a + ⅓b,
// ⅓a + ⅔b, b, b].
TEST_CASE("UpSampling2D bilinear interpolates with half-pixel centres, on every backend") {
  // the image [[0, 4], [8, 12]] in channel 0 and its negative in channel 1
  const Tensor image = Tensor::from_vector({0, 0, 4, -4, 8, -8, 12, -12}, {1, 2, 2, 2});
  const std::vector<float> want_2x2 = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
  // [[0, 4], [12, 16]], rows ×3 and columns ×2
  const std::vector<float> want_3x2 = {0, 1, 3,  4,  0,  1,  3,  4,  4,  5,  7,  8,
                                       8, 9, 11, 12, 12, 13, 15, 16, 12, 13, 15, 16};
  for (const std::string& backend : available_backends()) {
    CAPTURE(backend);
    Sequential model = test::single_layer("UpSampling2D", {{"interpolation", "bilinear"}}, {2, 2, 2});
    set_backend(backend);
    CHECK(model.output_shape() == Shape{4, 4, 2});
    std::vector<float> y = model.predict(image).to_vector();
    REQUIRE(y.size() == 32);
    for (size_t i = 0; i < want_2x2.size(); ++i) {
      CHECK(y[2 * i] == doctest::Approx(want_2x2[i]).epsilon(1e-6));
      CHECK(y[2 * i + 1] == doctest::Approx(-want_2x2[i]).epsilon(1e-6));
    }
    Sequential tall = test::single_layer(
        "UpSampling2D", {{"size", boost::json::array{3, 2}}, {"interpolation", "bilinear"}}, {2, 2, 1});
    set_backend(backend);
    CHECK(tall.output_shape() == Shape{6, 4, 1});
    std::vector<float> t = tall.predict(Tensor::from_vector({0, 4, 12, 16}, {1, 2, 2, 1})).to_vector();
    REQUIRE(t.size() == want_3x2.size());
    for (size_t i = 0; i < t.size(); ++i) CHECK(t[i] == doctest::Approx(want_3x2[i]).epsilon(1e-6));
  }
  CHECK(boost::json::serialize(
            test::single_layer("UpSampling2D", {{"interpolation", "bilinear"}}, {2, 2, 1}).get_config())
            .find("\"interpolation\":\"bilinear\"") != std::string::npos);
}

TEST_CASE("Permute reorders the axes after the batch axis, numbered from 1") {
  Sequential model = test::single_layer("Permute", {{"dims", boost::json::array{2, 1}}}, {2, 3});
  CHECK(model.output_shape() == Shape{3, 2});
  CHECK(model.predict(counting({2, 3})).to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(error_of([] {
          test::single_layer("Permute", {{"dims", boost::json::array{0, 1}}}, {2, 3});
        }).find("axis 0 is the batch") != std::string::npos);
}

TEST_CASE("RepeatVector repeats each sample's vector n times") {
  Sequential model = test::single_layer("RepeatVector", {{"n", 3}}, {2});
  CHECK(model.output_shape() == Shape{3, 2});
  CHECK(model.predict(counting({2})).to_vector() == std::vector<float>{1, 2, 1, 2, 1, 2});
  CHECK(error_of([] {
          test::single_layer("RepeatVector", {{"n", 0}}, {2});
        }).find("'n' must be at least 1") != std::string::npos);
}

TEST_CASE("GlobalAveragePooling2D and GlobalMaxPooling2D pool each channel over the whole image") {
  // channel 0 = 1..6, channel 1 = -(1..6) over a 2x3 image
  std::vector<float> x;
  for (int v = 1; v <= 6; ++v) x.insert(x.end(), {float(v), -float(v)});
  Tensor image = Tensor::from_vector(x, {1, 2, 3, 2});
  Sequential average = test::single_layer("GlobalAveragePooling2D", {}, {2, 3, 2});
  CHECK(average.output_shape() == Shape{2});
  CHECK(test::max_abs_diff(average.predict(image).to_vector(), {3.5f, -3.5f}) < 1e-6f);
  Sequential maximum = test::single_layer("GlobalMaxPooling2D", {{"keepdims", true}}, {2, 3, 2});
  CHECK(maximum.output_shape() == Shape{1, 1, 2});
  CHECK(maximum.predict(image).to_vector() == std::vector<float>{6, -1});
}

TEST_CASE(
    "a convolutional autoencoder with UpSampling2D and ZeroPadding2D trains alike on every backend here") {
  // random pixels in [0, 1): an output of 0.5 everywhere scores 1/12 + 1/4 - 1/4 ≈ 0.083; learning
  // what the pooled code keeps brings the loss well below that, to the same value on every backend
  std::map<std::string, double> final_loss;
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    set_random_seed(3);
    Sequential model;
    model.add(LayerSpec{"ZeroPadding2D", {{"padding", 1}, {"input_shape", boost::json::array{6, 6, 1}}}});
    model.add(layers::Conv2D(4, {3, 3}, {.activation = "relu"}));
    model.add(layers::MaxPooling2D({2, 2}));
    model.add(LayerSpec{"UpSampling2D", {{"size", 2}}});
    model.add(LayerSpec{"Cropping2D", {{"cropping", 0}}});
    model.add(layers::Conv2D(1, {3, 3}, {.padding = "same", .activation = "sigmoid"}));
    CHECK(model.output_shape() == Shape{6, 6, 1});
    Tensor x = test::random_tensor({32, 6, 6, 1}, 7, 0.0f, 1.0f);
    model.compile({.loss = "mean_squared_error", .optimizer = optimizers::Adam({.learning_rate = 0.01})});
    History h = model.fit(x, x, {.epochs = 30, .batch_size = 8, .verbose = 0});
    CHECK(h.history.at("loss").back() < 0.7 * h.history.at("loss").front());
    final_loss[backend_name] = h.history.at("loss").back();
  }
  // no structured binding: clang 14 lets no lambda (CAPTURE's included) capture one
  for (const auto& entry : final_loss) {
    CAPTURE(entry.first);
    CHECK(entry.second == doctest::Approx(final_loss.at("reference")).epsilon(1e-3));
  }
}

TEST_CASE("a model with the reshaping and global pooling layers survives save and load_model") {
  set_backend("reference");
  set_random_seed(11);
  Sequential model;
  model.add(LayerSpec{
      "ZeroPadding2D",
      {{"padding", boost::json::array{{1, 2}, {0, 1}}}, {"input_shape", boost::json::array{5, 4, 2}}}});
  model.add(LayerSpec{"Cropping2D", {{"cropping", boost::json::array{1, 0}}}});
  model.add(LayerSpec{"UpSampling2D", {{"size", boost::json::array{1, 2}}}});
  model.add(LayerSpec{"Permute", {{"dims", boost::json::array{2, 1, 3}}}});
  model.add(layers::Conv2D(3, {2, 2}));
  model.add(LayerSpec{"GlobalAveragePooling2D", {}});
  model.add(LayerSpec{"RepeatVector", {{"n", 2}}});
  model.add(layers::Flatten());
  model.compile({.loss = "mean_squared_error", .optimizer = "sgd"});
  const std::string path = test::scratch("reshaping_layers.h5");
  model.save(path);
  Sequential loaded = load_model(path);
  // every layer's config comes back as written (Conv2D's initializers come back spelt out in full)
  const boost::json::object model_config = model.get_config(), loaded_config = loaded.get_config();
  const boost::json::array &before = model_config.at("layers").as_array(),
                           &after = loaded_config.at("layers").as_array();
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i)
    if (before[i].at("class_name") != "Conv2D") CHECK(before[i] == after[i]);
  Tensor x = test::random_tensor({3, 5, 4, 2}, 5);
  CHECK(loaded.predict(x).to_vector() == model.predict(x).to_vector());
}
