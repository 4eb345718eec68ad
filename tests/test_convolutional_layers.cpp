// Keras' Conv2DTranspose (layers/convolutional): a hand-written example, Keras' output sizes and
// TensorFlow's padding against a plain scatter of each input pixel over the kernel, on every
// backend; gradients through it in training; its config keys and errors; and the real Keras 3 and
// tf_keras convolutional autoencoders with Keras' own predictions (tests/data/keras_models_v2).
// Then Conv2D's dilation_rate and groups, DepthwiseConv2D and SeparableConv2D: against a plain
// loop over Keras' definition, in training, their configs through files, their errors, and real
// Keras 3 and tf_keras files with Keras' predictions (tests/data/keras_convs).
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

// ------------------------------------------------------------------------------------------------
// Dilated and grouped Conv2D, DepthwiseConv2D, SeparableConv2D

namespace {

const std::string kKerasConvs = std::string(LAMINA_SOURCE_DIR) + "/tests/data/keras_convs";

// Keras' convolution as its definition reads, for one (N, H, W, C) batch and a kernel (kh, kw,
// C / groups, O): output (i, j, o) sums x[i·s + di·dh − top, j·s + dj·dw − left, g·(C/groups) + k] ·
// kernel[di, dj, k, o] over the taps inside the input, g = o / (O / groups); plus bias[o].
struct Geometry {
  int64_t stride = 1, dh = 1, dw = 1, groups = 1, top = 0, left = 0, out_h = 0, out_w = 0;
};
std::vector<float> plain_conv(const Tensor& x, const Tensor& kernel, const std::vector<float>& bias,
                              const Geometry& g) {
  const Shape xs = x.shape(), ks = kernel.shape();
  const std::vector<float> xv = x.to_vector(), kv = kernel.to_vector();
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3], kh = ks[0], kw = ks[1], cg = ks[2], o = ks[3];
  const int64_t og = o / g.groups;
  std::vector<float> y;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < g.out_h; ++i)
      for (int64_t j = 0; j < g.out_w; ++j)
        for (int64_t oc = 0; oc < o; ++oc) {
          double sum = bias.empty() ? 0.0 : bias[size_t(oc)];
          for (int64_t di = 0; di < kh; ++di)
            for (int64_t dj = 0; dj < kw; ++dj) {
              const int64_t r = i * g.stride + di * g.dh - g.top, q = j * g.stride + dj * g.dw - g.left;
              if (r < 0 || r >= h || q < 0 || q >= w) continue;
              for (int64_t k = 0; k < cg; ++k)
                sum += double(xv[size_t(((b * h + r) * w + q) * c + (oc / og) * cg + k)]) *
                       double(kv[size_t(((di * kw + dj) * cg + k) * o + oc)]);
            }
          y.push_back(float(sum));
        }
  return y;
}

Sequential model_of(const std::string& class_name, json::object config, const Shape& input_shape) {
  config["input_shape"] = layers::detail::to_json_array(input_shape);
  Sequential model;
  model.add(LayerSpec{class_name, config});
  return model;
}

// The config of a Sequential model's last layer, as get_config writes it.
json::object last_layer_config(const Sequential& model) {
  return model.get_config()["layers"].as_array().back().as_object()["config"].as_object();
}

json::array pair(int64_t a, int64_t b) {
  json::array p;
  p.push_back(a);
  p.push_back(b);
  return p;
}

// Host copies, so that later in-place updates of a layer's tensors do not reach them.
std::vector<Tensor> copies(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(Tensor::from_vector(t.to_vector(), t.shape()));
  return out;
}

}  // namespace

TEST_CASE(
    "Conv2D with dilation_rate spreads the kernel's taps apart, as Keras defines it, on every backend") {
  // a 3x3 kernel with rate 2 spans 5x5 cells; "same" pads (5 − 1) / 2 = 2 on each side
  const Tensor x = test::random_tensor({2, 9, 8, 3}, 31);
  const Tensor kernel = test::random_tensor({3, 3, 3, 4}, 32), bias = test::random_tensor({4}, 33);
  struct Case {
    std::string padding;
    json::array rate;
    Shape output;
    Geometry g;
  };
  const std::vector<Case> cases = {
      {"same", pair(2, 2), {9, 8, 4}, {1, 2, 2, 1, 2, 2, 9, 8}},
      {"valid", pair(2, 2), {5, 4, 4}, {1, 2, 2, 1, 0, 0, 5, 4}},
      // 2 along the height (a span of 5), 3 along the width (a span of 7)
      {"valid", pair(2, 3), {5, 2, 4}, {1, 2, 3, 1, 0, 0, 5, 2}},
      {"same", pair(2, 3), {9, 8, 4}, {1, 2, 3, 1, 2, 3, 9, 8}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.padding);
    CAPTURE(json::serialize(c.rate));
    const std::vector<float> want = plain_conv(x, kernel, bias.to_vector(), c.g);
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = model_of(
          "Conv2D", {{"filters", 4}, {"kernel_size", 3}, {"dilation_rate", c.rate}, {"padding", c.padding}},
          {9, 8, 3});
      REQUIRE(model.output_shape() == c.output);
      CHECK(model.layer(0).weights()[0].shape() == Shape{3, 3, 3, 4});
      model.layer(0).set_weights({kernel, bias});
      CHECK(test::max_abs_diff(model.predict(x).to_vector(), want) < 1e-5f);
    }
  }
}

TEST_CASE("Conv2D with groups convolves each group of channels with its own filters, on every backend") {
  // 6 input channels in 3 groups of 2, 9 filters in 3 groups of 3: kernel (3, 3, 2, 9); output
  // channel o reads input channels 2·(o / 3) and 2·(o / 3) + 1 only. Stride 2 "same" on 7x7 pads
  // one row and column on each side.
  const Tensor x = test::random_tensor({2, 7, 7, 6}, 41);
  const Tensor kernel = test::random_tensor({3, 3, 2, 9}, 42), bias = test::random_tensor({9}, 43);
  const std::vector<float> want = plain_conv(x, kernel, bias.to_vector(), {2, 1, 1, 3, 1, 1, 4, 4});
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential model = model_of(
        "Conv2D", {{"filters", 9}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}, {"groups", 3}},
        {7, 7, 6});
    REQUIRE(model.output_shape() == Shape{4, 4, 9});
    CHECK(model.layer(0).weight_names() == std::vector<std::string>{"kernel", "bias"});
    REQUIRE(model.layer(0).weights()[0].shape() == Shape{3, 3, 2, 9});
    model.layer(0).set_weights({kernel, bias});
    CHECK(test::max_abs_diff(model.predict(x).to_vector(), want) < 1e-5f);
  }
}

TEST_CASE(
    "DepthwiseConv2D: output channel c·depth_multiplier + m is input channel c under kernel[..., c, m]") {
  // depthwise_kernel (3, 3, 3, 2) is the grouped kernel (3, 3, 1, 6) with one group per channel
  const Tensor x = test::random_tensor({2, 6, 7, 3}, 51);
  const Tensor kernel = test::random_tensor({3, 3, 3, 2}, 52), bias = test::random_tensor({6}, 53);
  const Tensor grouped = Tensor::from_vector(kernel.to_vector(), {3, 3, 1, 6});
  struct Case {
    json::object config;
    Shape output;
    Geometry g;
  };
  const std::vector<Case> cases = {
      {{{"kernel_size", 3}, {"depth_multiplier", 2}, {"padding", "same"}},
       {6, 7, 6},
       {1, 1, 1, 3, 1, 1, 6, 7}},
      {{{"kernel_size", 3}, {"depth_multiplier", 2}, {"strides", 2}}, {2, 3, 6}, {2, 1, 1, 3, 0, 0, 2, 3}},
      {{{"kernel_size", 3}, {"depth_multiplier", 2}, {"dilation_rate", 2}, {"padding", "same"}},
       {6, 7, 6},
       {1, 2, 2, 3, 2, 2, 6, 7}},
  };
  for (const Case& c : cases) {
    CAPTURE(json::serialize(c.config));
    const std::vector<float> want = plain_conv(x, grouped, bias.to_vector(), c.g);
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = model_of("DepthwiseConv2D", c.config, {6, 7, 3});
      REQUIRE(model.output_shape() == c.output);
      CHECK(model.layer(0).weight_names() == std::vector<std::string>{"depthwise_kernel", "bias"});
      REQUIRE(model.layer(0).weights()[0].shape() == Shape{3, 3, 3, 2});
      model.layer(0).set_weights({kernel, bias});
      CHECK(test::max_abs_diff(model.predict(x).to_vector(), want) < 1e-5f);
    }
  }
}

TEST_CASE("SeparableConv2D is DepthwiseConv2D without a bias, then a 1x1 Conv2D, on every backend") {
  const Tensor x = test::random_tensor({3, 8, 8, 4}, 61);
  const Tensor depthwise = test::random_tensor({3, 3, 4, 2}, 62);
  const Tensor pointwise = test::random_tensor({1, 1, 8, 5}, 63), bias = test::random_tensor({5}, 64);
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential separable = model_of("SeparableConv2D",
                                    {{"filters", 5},
                                     {"kernel_size", 3},
                                     {"strides", 2},
                                     {"padding", "same"},
                                     {"depth_multiplier", 2},
                                     {"activation", "relu"}},
                                    {8, 8, 4});
    REQUIRE(separable.output_shape() == Shape{4, 4, 5});
    CHECK(separable.layer(0).weight_names() ==
          std::vector<std::string>{"depthwise_kernel", "pointwise_kernel", "bias"});
    separable.layer(0).set_weights({depthwise, pointwise, bias});

    Sequential two;
    two.add(layers::DepthwiseConv2D({3, 3}, {.strides = {2, 2},
                                             .padding = "same",
                                             .depth_multiplier = 2,
                                             .use_bias = false,
                                             .input_shape = {8, 8, 4}}));
    two.add(layers::Conv2D(5, {1, 1}, {.activation = "relu"}));
    two.layer(0).set_weights({depthwise});
    two.layer(1).set_weights({pointwise, bias});
    CHECK(test::max_abs_diff(separable.predict(x).to_vector(), two.predict(x).to_vector()) < 1e-5f);
  }
}

TEST_CASE(
    "dilated, grouped, depthwise and separable convolutions train: gradients match finite differences") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    set_random_seed(5);
    Sequential model;
    model.add(layers::Conv2D(
        4, {3, 3},
        {.padding = "same", .dilation_rate = {2, 2}, .activation = "tanh", .input_shape = {6, 6, 2}}));
    model.add(layers::Conv2D(4, {3, 3}, {.groups = 2, .activation = "tanh"}));
    model.add(layers::DepthwiseConv2D({2, 2}, {.depth_multiplier = 2, .activation = "tanh"}));
    model.add(layers::SeparableConv2D(2, {2, 2}, {.padding = "same", .dilation_rate = {2, 2}}));
    model.compile("mean_squared_error", "sgd");
    REQUIRE(model.output_shape() == Shape{3, 3, 2});
    const Tensor x = test::random_tensor({4, 6, 6, 2}, 71), y = test::random_tensor({4, 3, 3, 2}, 72);
    auto all_weights = [&] {
      std::vector<Tensor> w;
      for (size_t i = 0; i < model.size(); ++i)
        for (const Tensor& t : model.layer(i).get_weights()) w.push_back(t);
      return copies(w);
    };
    auto set_all = [&](const std::vector<Tensor>& w) {
      size_t k = 0;
      for (size_t i = 0; i < model.size(); ++i) {
        std::vector<Tensor> mine;
        for (size_t j = 0; j < model.layer(i).get_weights().size(); ++j) mine.push_back(w[k++]);
        model.layer(i).set_weights(copies(mine));
      }
    };
    auto loss_with = [&](const std::vector<Tensor>& w) {
      set_all(w);
      std::vector<float> p = model.predict(x).to_vector(), t = y.to_vector();
      double s = 0;
      for (size_t i = 0; i < p.size(); ++i)
        s += (double(p[i]) - t[i]) * (double(p[i]) - t[i]) / double(p.size());
      return s;
    };
    const std::vector<Tensor> weights = all_weights();
    REQUIRE(weights.size() == 9);  // kernel, bias ×2; depthwise_kernel, bias; depthwise, pointwise, bias
    const double before = loss_with(weights);
    set_all(weights);
    model.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
    const std::vector<Tensor> after = all_weights();
    const double lr = 0.01;  // Keras' SGD default
    for (size_t k = 0; k < weights.size(); ++k) {
      std::vector<float> w0 = weights[k].to_vector(), w1 = after[k].to_vector();
      for (size_t i = 0; i < w0.size(); i += 3) {
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

TEST_CASE("DepthwiseConv2D and SeparableConv2D: Keras' defaults, and configs and weights through a file") {
  set_backend("reference");
  // defaults, as Keras writes them
  Sequential depthwise = model_of("DepthwiseConv2D", {{"kernel_size", 3}}, {5, 5, 2});
  CHECK(depthwise.output_shape() == Shape{3, 3, 2});
  json::object d = last_layer_config(depthwise);
  CHECK(d["depth_multiplier"] == 1);
  CHECK(d["dilation_rate"] == pair(1, 1));
  CHECK(d["strides"] == pair(1, 1));
  CHECK(d["padding"] == "valid");
  CHECK(d["activation"] == "linear");
  CHECK(d["use_bias"] == true);
  CHECK(d["depthwise_initializer"] == "glorot_uniform");
  CHECK(d["bias_initializer"] == "zeros");
  CHECK(d["depthwise_regularizer"].is_null());
  CHECK(d["depthwise_constraint"].is_null());
  CHECK_FALSE(d.contains("kernel_initializer"));
  Sequential separable = model_of("SeparableConv2D", {{"filters", 3}, {"kernel_size", 3}}, {5, 5, 2});
  json::object s = last_layer_config(separable);
  CHECK(s["filters"] == 3);
  CHECK(s["depth_multiplier"] == 1);
  CHECK(s["pointwise_initializer"] == "glorot_uniform");
  CHECK(s["pointwise_regularizer"].is_null());
  CHECK(separable.layer(0).get_weights()[1].shape() == Shape{1, 1, 2, 3});
  Sequential conv = model_of("Conv2D", {{"filters", 4}, {"kernel_size", 3}}, {5, 5, 2});
  const std::string plain = json::serialize(conv.get_config());
  CHECK(plain.find("\"groups\"") == std::string::npos);  // Keras 2.2 and tf.keras < 2.3 refuse the key
  CHECK(plain.find("\"dilation_rate\":[1,1]") != std::string::npos);

  // a model of all of them, saved and loaded: the same configs, weights and predictions
  set_random_seed(9);
  Sequential model;
  model.add(
      layers::Conv2D(6, {3, 3}, {.padding = "same", .dilation_rate = {2, 1}, .input_shape = {8, 8, 2}}));
  model.add(layers::Conv2D(4, {3, 3}, {.groups = 2, .activation = "relu", .bias_initializer = "ones"}));
  model.add(layers::DepthwiseConv2D(
      {3, 3},
      {.padding = "same", .depth_multiplier = 3, .dilation_rate = {2, 2}, .bias_initializer = "ones"}));
  model.add(layers::SeparableConv2D(
      5, {3, 3},
      {.strides = {2, 2}, .depth_multiplier = 2, .activation = "tanh", .bias_initializer = "ones"}));
  model.compile("mean_squared_error", "adam");
  REQUIRE(model.output_shape() == Shape{2, 2, 5});
  const std::string path = test::scratch("modern_convs.h5");
  model.save(path);
  Sequential loaded = load_model(path);
  // the same configs, but for the initializers, which a file holds in Keras' long form
  auto without_initializers = [](const Sequential& m) {
    json::array out;
    const json::object model_config = m.get_config();
    for (const json::value& layer : model_config.at("layers").as_array()) {
      json::object config = layer.as_object().at("config").as_object();
      for (const char* key :
           {"kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer"})
        config.erase(key);
      out.push_back(config);
    }
    return out;
  };
  CHECK(json::serialize(without_initializers(loaded)) == json::serialize(without_initializers(model)));
  CHECK(loaded.layer(2).get_config()["bias_initializer"].as_object()["class_name"] == "Ones");
  CHECK(test::weights_of(loaded) == test::weights_of(model));
  const std::vector<Shape> shapes = {{3, 3, 2, 6}, {6},           {3, 3, 3, 4},  {4}, {3, 3, 4, 3},
                                     {12},         {3, 3, 12, 2}, {1, 1, 24, 5}, {5}};
  std::vector<Shape> got;
  for (size_t i = 0; i < loaded.size(); ++i)
    for (const Tensor& w : loaded.layer(i).get_weights()) got.push_back(w.shape());
  CHECK(got == shapes);
  const Tensor x = test::random_tensor({2, 8, 8, 2}, 81);
  CHECK(loaded.predict(x).to_vector() == model.predict(x).to_vector());
  const std::string config = json::serialize(loaded.get_config());
  CHECK(config.find("\"groups\":2") != std::string::npos);
  CHECK(config.find("\"dilation_rate\":[2,1]") != std::string::npos);
  CHECK(config.find("\"depth_multiplier\":3") != std::string::npos);
}

TEST_CASE("bad dilated, grouped, depthwise and separable configs: one error naming the layer and the key") {
  set_backend("reference");
  auto error = [](const std::string& class_name, json::object config, const Shape& input) {
    return error_of([&] { model_of(class_name, config, input); });
  };
  // the error begins with `start` (the core may add where it was raised)
  auto starts = [](const std::string& text, const std::string& start) {
    CHECK_MESSAGE(text.rfind(start, 0) == 0, "the error was: " << text);
  };
  starts(error("DepthwiseConv2D", {{"kernel_size", 3}, {"depth_multiplier", 0}}, {5, 5, 2}),
         "DepthwiseConv2D: config key 'depth_multiplier' must be a positive integer (the output channels per "
         "input channel), got 0");
  starts(error("SeparableConv2D", {{"filters", 2}, {"kernel_size", 3}, {"depth_multiplier", -2}}, {5, 5, 2}),
         "SeparableConv2D: config key 'depth_multiplier' must be a positive integer");
  starts(error("Conv2D", {{"filters", 5}, {"kernel_size", 3}, {"groups", 2}}, {5, 5, 4}),
         "Conv2D: config key 'groups' 2 must divide 'filters' 5");
  starts(error("Conv2D", {{"filters", 4}, {"kernel_size", 3}, {"groups", 2}}, {5, 5, 3}),
         "Conv2D: config key 'groups' 2 must divide the input's 3 channels; use a groups that divides both "
         "filters and the input's channels (in Conv2D 'conv2d', input shape (5, 5, 3))");
  starts(error("Conv2D", {{"filters", 4}, {"kernel_size", 3}, {"groups", 0}}, {5, 5, 4}),
         "Conv2D: config key 'groups' must be a positive integer, got 0");
  const std::string strided =
      "config key 'dilation_rate' [2, 2] cannot be combined with strides [2, 2] (Keras "
      "refuses strides > 1 with dilation_rate > 1 too); use strides 1 or dilation_rate 1";
  starts(
      error("Conv2D", {{"filters", 4}, {"kernel_size", 3}, {"strides", 2}, {"dilation_rate", 2}}, {9, 9, 1}),
      "Conv2D: " + strided);
  starts(error("DepthwiseConv2D", {{"kernel_size", 3}, {"strides", 2}, {"dilation_rate", 2}}, {9, 9, 1}),
         "DepthwiseConv2D: " + strided);
  starts(error("SeparableConv2D",
               {{"name", "sep"}, {"filters", 1}, {"kernel_size", 3}, {"strides", 2}, {"dilation_rate", 2}},
               {9, 9, 1}),
         "SeparableConv2D 'sep': " + strided);
  starts(error("DepthwiseConv2D", {{"kernel_size", 3}, {"groups", 2}}, {5, 5, 2}),
         "DepthwiseConv2D: config key 'groups' must be 1, got 2");
  starts(error("SeparableConv2D", {{"kernel_size", 3}}, {5, 5, 2}),
         "SeparableConv2D: config key 'filters' is missing");
  // a dilated kernel wider than the input under "valid"
  CHECK(error("DepthwiseConv2D", {{"kernel_size", 3}, {"dilation_rate", 3}}, {5, 5, 2})
            .find("smaller than the dilated kernel 7x7") != std::string::npos);
}

TEST_CASE("real Keras 3 and tf_keras files with dilated, grouped, depthwise and separable convolutions") {
  // Conv2D dilation_rate 2 same relu, Conv2D groups 2 tanh, DepthwiseConv2D multiplier 2 same,
  // DepthwiseConv2D dilation_rate (2, 3) without bias sigmoid, SeparableConv2D 5 stride 2 same
  // multiplier 2 relu; every weight drawn non-zero (tests/data/keras_convs/make_models.py)
  const Tensor x = test::read_npy(kKerasConvs + "/modern_convs.input.npy");
  for (const std::string name : {"k3_modern_convs", "tfk2_modern_convs"}) {
    const std::vector<float> expected = test::read_npy(kKerasConvs + "/" + name + ".ref.npy").to_vector();
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(name);
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = load_model(kKerasConvs + "/" + name + ".h5");
      CHECK(model.get_layer("grouped").weights()[0].shape() == Shape{3, 3, 3, 6});
      CHECK(model.get_layer("depthwise").class_name() == "DepthwiseConv2D");
      CHECK(model.get_layer("depthwise").weights()[0].shape() == Shape{3, 3, 6, 2});
      CHECK(model.get_layer("depthwise_dilated").output_shape() == Shape{5, 4, 12});
      CHECK(model.get_layer("separable").weights()[1].shape() == Shape{1, 1, 24, 5});
      REQUIRE(model.output_shape() == Shape{3, 2, 5});
      const std::vector<float> got = model.predict(x).to_vector();
      const float diff = test::max_abs_diff(got, expected);
      MESSAGE(name << " on " << backend_name << ": largest difference from Keras " << diff);
      CHECK(diff < 1e-4f);

      // saved by lamina and loaded back: the same weights and predictions
      const std::string path = test::scratch(name + "_" + backend_name + ".h5");
      model.save(path);
      Sequential again = load_model(path);
      CHECK(test::weights_of(again) == test::weights_of(model));
      CHECK(again.predict(x).to_vector() == got);
    }
  }
}
