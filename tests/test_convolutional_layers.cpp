// Keras' Conv2DTranspose (layers/convolutional): a hand-written example, Keras' output sizes and
// TensorFlow's padding against a plain scatter of each input pixel over the kernel, on every
// backend; gradients through it in training; its config keys and errors; and the real Keras 3 and
// tf_keras convolutional autoencoders with Keras' own predictions (tests/data/keras_models_v2).
#include "support.hpp"

#include <optional>

using namespace lamina;
using lamina::test::error_of;
namespace json = boost::json;

namespace {

const std::string kKerasV2 = std::string(LAMINA_SOURCE_DIR) + "/tests/data/keras_models_v2";

Sequential one_layer(json::object config, const Shape& input_shape) {
  config["input_shape"] = layers::detail::to_json_array(input_shape);
  Sequential model;
  model.add(LayerSpec{"Conv2DTranspose", config});
  return model;
}

// The transposed convolution as its definition reads: each input pixel x[n,i,j,c] adds
// x·w[di,dj,o,c] to the full output at (i·s + di, j·s + dj), the full output being
// ((H − 1)·s + KH) x ((W − 1)·s + KW); the layer's output is that from row `top` and column `left`
// on, `out` rows and columns, zero where the full output has no cell.
std::vector<float> scatter(const std::vector<float>& x, const Shape& xs, const std::vector<float>& w,
                           const Shape& ws, int64_t s, int64_t top, int64_t out) {
  const int64_t n = xs[0], h = xs[1], wd = xs[2], c = xs[3], kh = ws[0], kw = ws[1], o = ws[2];
  std::vector<double> y(size_t(n * out * out * o), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < wd; ++j)
        for (int64_t di = 0; di < kh; ++di)
          for (int64_t dj = 0; dj < kw; ++dj) {
            const int64_t r = i * s + di - top, q = j * s + dj - top;
            if (r < 0 || r >= out || q < 0 || q >= out) continue;
            for (int64_t oc = 0; oc < o; ++oc)
              for (int64_t ic = 0; ic < c; ++ic)
                y[size_t(((b * out + r) * out + q) * o + oc)] +=
                    double(x[size_t(((b * h + i) * wd + j) * c + ic)]) *
                    double(w[size_t(((di * kw + dj) * o + oc) * c + ic)]);
          }
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace

TEST_CASE(
    "Conv2DTranspose spreads each pixel over the kernel: a 2x2 image with a 2x2 kernel of ones, stride 2") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential model =
        one_layer({{"filters", 1}, {"kernel_size", 2}, {"strides", 2}, {"use_bias", false}}, {2, 2, 1});
    CHECK(model.output_shape() == Shape{4, 4, 1});
    CHECK(model.layer(0).weight_names() == std::vector<std::string>{"kernel"});
    model.layer(0).set_weights({Tensor::from_vector({1, 1, 1, 1}, {2, 2, 1, 1})});
    CHECK(model.predict(Tensor::from_vector({1, 2, 3, 4}, {1, 2, 2, 1})).to_vector() ==
          std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  }
}

TEST_CASE("Conv2DTranspose: Keras' output sizes and TensorFlow's padding, on every backend") {
  struct Case {
    std::string name;
    int64_t kernel, stride;
    std::string padding;
    std::optional<int64_t> output_padding;
    int64_t out, top;  // Keras' deconv_output_length; the rows TensorFlow crops from the full output
  };
  // a 3x3 input: full outputs are (3 − 1)·s + k
  const std::vector<Case> cases = {
      {"3x3 stride 2 valid", 3, 2, "valid", std::nullopt, 7, 0},
      {"3x3 stride 2 same", 3, 2, "same", std::nullopt, 6, 0},
      {"4x4 stride 2 same", 4, 2, "same", std::nullopt, 6, 1},
      {"3x3 stride 2 valid, output_padding 1", 3, 2, "valid", 1, 8, 0},
      {"3x3 stride 2 same, output_padding 0", 3, 2, "same", 0, 5, 1},
      {"2x2 stride 3 valid (a row past the last window)", 2, 3, "valid", std::nullopt, 9, 0},
      {"3x3 stride 1 same", 3, 1, "same", std::nullopt, 3, 1},
      {"5x5 stride 3 same, output_padding 2", 5, 3, "same", 2, 9, 1},
  };
  const Shape xs{2, 3, 3, 2};
  const Tensor x = test::random_tensor(xs, 11);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Shape ws{c.kernel, c.kernel, 3, 2};
    const Tensor w = test::random_tensor(ws, 12), b = Tensor::from_vector({0.5f, -1, 2}, {3});
    std::vector<float> want = scatter(x.to_vector(), xs, w.to_vector(), ws, c.stride, c.top, c.out);
    for (size_t i = 0; i < want.size(); ++i) want[i] += b.to_vector()[i % 3];
    json::object config{
        {"filters", 3}, {"kernel_size", c.kernel}, {"strides", c.stride}, {"padding", c.padding}};
    if (c.output_padding) config["output_padding"] = *c.output_padding;
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = one_layer(config, {3, 3, 2});
      REQUIRE(model.output_shape() == Shape{c.out, c.out, 3});
      CHECK(model.layer(0).weight_names() == std::vector<std::string>{"kernel", "bias"});
      model.layer(0).set_weights({w, b});
      CHECK(test::max_abs_diff(model.predict(x).to_vector(), want) < 1e-5f);
    }
  }
}

TEST_CASE("a model with Conv2DTranspose trains: its gradients match finite differences") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    set_random_seed(3);
    Sequential model;
    model.add(layers::Conv2DTranspose(
        2, {3, 3}, {.strides = {2, 2}, .padding = "same", .activation = "tanh", .input_shape = {3, 3, 2}}));
    model.compile("mean_squared_error", "sgd");
    const Tensor x = test::random_tensor({4, 3, 3, 2}, 21), y = test::random_tensor({4, 6, 6, 2}, 22);
    Layer& deconv = model.layer(0);
    // host copies in and out: the optimizer updates the layer's tensors in place
    auto copies = [](const std::vector<Tensor>& ts) {
      std::vector<Tensor> out;
      for (const Tensor& t : ts) out.push_back(Tensor::from_vector(t.to_vector(), t.shape()));
      return out;
    };
    const std::vector<Tensor> weights = copies(deconv.get_weights());
    // dL/dw from one step of SGD(lr) against central differences of the loss
    auto loss_with = [&](const std::vector<Tensor>& w) {
      deconv.set_weights(copies(w));
      std::vector<float> p = model.predict(x).to_vector(), t = y.to_vector();
      double s = 0;
      for (size_t i = 0; i < p.size(); ++i)
        s += (double(p[i]) - t[i]) * (double(p[i]) - t[i]) / double(p.size());
      return s;
    };
    const double before = loss_with(weights);
    deconv.set_weights(copies(weights));
    model.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
    const std::vector<Tensor> after = copies(deconv.get_weights());
    const double lr = 0.01;  // Keras' SGD default
    for (size_t k = 0; k < weights.size(); ++k) {
      std::vector<float> w0 = weights[k].to_vector(), w1 = after[k].to_vector();
      for (size_t i = 0; i < w0.size(); i += 5) {
        const double analytic = (double(w0[i]) - double(w1[i])) / lr;
        std::vector<Tensor> plus = weights, minus = weights;
        std::vector<float> p = w0, m = w0;
        p[i] += 1e-2f, m[i] -= 1e-2f;
        plus[k] = Tensor::from_vector(p, weights[k].shape());
        minus[k] = Tensor::from_vector(m, weights[k].shape());
        const double numeric = (loss_with(plus) - loss_with(minus)) / 2e-2;
        INFO("weight " << k << " element " << i);
        CHECK(analytic == doctest::Approx(numeric).epsilon(2e-2).scale(1e-2));
      }
    }
    CHECK(loss_with(after) < before);
  }
}

TEST_CASE("Conv2DTranspose's config: Keras' keys both ways, and bad ones named with the fix") {
  set_backend("reference");
  Sequential model;
  model.add(layers::Conv2DTranspose(
      4, {3, 3},
      {.strides = {2, 2}, .padding = "same", .output_padding = {{1, 1}}, .input_shape = {5, 5, 2}}));
  CHECK(model.output_shape() == Shape{10, 10, 4});
  CHECK(model.layer(0).get_weights()[0].shape() == Shape{3, 3, 4, 2});  // (kh, kw, filters, in_channels)
  const std::string config = json::serialize(model.get_config());
  CHECK(config.find("\"output_padding\":[1,1]") != std::string::npos);
  CHECK(config.find("\"groups\"") == std::string::npos);
  Sequential plain =
      one_layer({{"filters", 1}, {"kernel_size", 3}, {"groups", 1}, {"output_padding", nullptr}}, {4, 4, 1});
  CHECK(plain.output_shape() == Shape{6, 6, 1});
  CHECK(json::serialize(plain.get_config()).find("\"output_padding\":null") != std::string::npos);

  CHECK(error_of([] {
          one_layer({{"filters", 2}, {"kernel_size", 3}, {"strides", 2}, {"output_padding", 2}}, {4, 4, 1});
        }) ==
        "Conv2DTranspose: config key 'output_padding' [2, 2] must be less than strides [2, 2] on each axis "
        "(Keras refuses it too); use a smaller output_padding or null (in Conv2DTranspose "
        "'conv2d_transpose')");
  CHECK(error_of([] {
          one_layer({{"filters", 2}, {"kernel_size", 3}, {"output_padding", json::array{0, 1}}}, {4, 4, 1});
        }).find("'output_padding' [0, 1] must be less than strides [1, 1]") != std::string::npos);
  CHECK(error_of([] {
          one_layer({{"filters", 2}, {"kernel_size", 3}, {"groups", 2}}, {4, 4, 2});
        }).find("Conv2DTranspose: config key 'groups' must be 1 for Conv2DTranspose, got 2") == 0);
  CHECK(error_of([] {
          one_layer({{"filters", 2}, {"kernel_size", 3}, {"dilation_rate", 2}}, {4, 4, 1});
        }).find("dilation_rate other than 1 is not supported yet") != std::string::npos);
  CHECK(error_of([] {
          one_layer({{"filters", 2}, {"kernel_size", 3}, {"output_padding", -1}}, {4, 4, 1});
        }).find("'output_padding' must be null, an integer >= 0 or a list of two, got -1") !=
        std::string::npos);
}

TEST_CASE("real Keras 3 and tf_keras convolutional autoencoders predict as Keras did, on every backend") {
  // Conv2D, MaxPooling2D, Conv2D, MaxPooling2D, Conv2DTranspose(8, 3, strides 2, same, relu),
  // UpSampling2D (nearest), Conv2D sigmoid: 28x28 images back to 28x28.
  const Tensor images = test::read_npy(kKerasV2 + "/images.input.npy");
  for (const std::string name : {"k3_conv_autoencoder", "tfk2_conv_autoencoder"}) {
    const std::vector<float> expected = test::read_npy(kKerasV2 + "/" + name + ".ref.npy").to_vector();
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(name);
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = load_model(kKerasV2 + "/" + name + ".h5");
      const Layer& deconv = model.get_layer("dec_deconv");
      CHECK(deconv.class_name() == "Conv2DTranspose");
      CHECK(deconv.weights()[0].shape() == Shape{3, 3, 8, 8});
      CHECK(deconv.output_shape() == Shape{14, 14, 8});
      CHECK(model.output_shape() == Shape{28, 28, 1});
      CHECK(test::max_abs_diff(model.predict(images, 256).to_vector(), expected) < 1e-4f);
    }
  }
}
