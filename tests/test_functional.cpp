// Graph models, Keras' functional API: building from symbolic calls, shared layers, models used
// as layers, several inputs and outputs, intermediate features, the merge layers, Keras configs
// and files both ways, and the errors a bad graph gives.
#include "support.hpp"

#include <cmath>

using namespace lamina;
using namespace lamina::layers;
using lamina::test::error_of;

namespace {

const std::string kKerasV2 = std::string(LAMINA_SOURCE_DIR) + "/tests/data/keras_models_v2";

Tensor tensor(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s); }

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("\"" << part << "\" not in: " << s);
  return false;
}

// 200 real MNIST test digits, pixels / 255, one-hot labels.
std::pair<Tensor, Tensor> digits(int64_t n = 200) {
  const std::string dir = std::string(LAMINA_SOURCE_DIR) + "/tests/data/mnist/";
  Tensor x = read_idx(dir + "t10k-images-idx3-ubyte.gz").slice(0, n);
  Tensor y = read_idx(dir + "t10k-labels-idx1-ubyte.gz").slice(0, n);
  return {ops::scale(x.reshape({-1, 28, 28, 1}), 1.0 / 255.0), to_categorical(y, 10)};
}

// Two inputs (a 4-vector and a 3-vector) and two heads: a 3-class softmax and a regression.
Model two_headed() {
  KerasTensor a = Input({4}, "features"), b = Input({3}, "extra");
  KerasTensor h = Dense(8, {.activation = "tanh", .name = "joint"})(Concatenate()({a, b}));
  KerasTensor cls = Dense(3, {.activation = "softmax", .name = "cls"})(h);
  KerasTensor reg = Dense(1, {.name = "reg"})(h);
  return Model({a, b}, {cls, reg}, "two_headed");
}

}  // namespace

TEST_CASE("a functional model is the graph its outputs depend on, listed and summarised as Keras does") {
  set_backend("reference");
  set_random_seed(1);
  Model model = test::small_residual_cnn();
  CHECK_FALSE(model.is_sequential());
  // Keras' model.layers of a graph lists its InputLayer first.
  REQUIRE(model.size() == 8);
  CHECK(model.layer(0).class_name() == "InputLayer");
  CHECK(model.layer(0).name() == "image");
  CHECK(model.input_names() == std::vector<std::string>{"image"});
  CHECK(model.input_shape() == Shape{28, 28, 1});
  CHECK(model.output_shape() == Shape{10});
  const Layer& add = model.layer(3);
  CHECK(add.class_name() == "Add");
  CHECK(add.input_shapes() == std::vector<Shape>{{28, 28, 4}, {28, 28, 4}});
  CHECK(model.count_params() == (9 * 4 + 4) + (9 * 16 + 4) + (14 * 14 * 4 * 10 + 10));
  const std::string summary = model.summary();
  CHECK(contains(summary, "Connected to"));
  CHECK(contains(summary, "image (InputLayer)"));
  CHECK(contains(summary, "[(None, 28, 28, 1)]"));
  // The Add row lists both branches, as tf.keras prints them.
  CHECK(contains(summary, "['" + model.layer(1).name() + "[0][0]',"));
  CHECK(contains(summary, "'" + model.layer(2).name() + "[0][0]']"));
  CHECK(contains(summary, "Total params: 8038"));
}

TEST_CASE("the functional form of a Sequential model trains to the same weights from the same seed") {
  for (const std::string backend_name : {"reference", "onednn"}) {
    CAPTURE(backend_name);
    test::use_backend_or_skip(backend_name);
    auto [x, y] = digits();
    set_random_seed(5);
    Sequential sequential = test::small_digit_cnn();
    sequential.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0});
    set_random_seed(5);
    KerasTensor in = Input({28, 28, 1});
    KerasTensor out = Dense(10, {.activation = "softmax"})(
        Flatten()(MaxPooling2D({2, 2})(Conv2D(4, {3, 3}, {.activation = "relu"})(in))));
    Model functional(in, out);
    functional.compile("categorical_crossentropy", "adam", {"accuracy"});
    History h = functional.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0});
    CHECK(test::flat_weights_of(functional) == test::flat_weights_of(sequential));
    CHECK(h.history.count("accuracy") == 1);
  }
}

TEST_CASE("a layer called twice shares its weights, and both calls train them") {
  set_backend("reference");
  set_random_seed(2);
  LayerSpec shared = Dense(2, {.name = "shared"});
  KerasTensor a = Input({3}, "a"), b = Input({3}, "b");
  KerasTensor out = Subtract()({shared(a), shared(b)});  // shared(a) - shared(b) = W·(a - b)
  Model model({a, b}, out);
  CHECK(model.size() == 4);  // a, b, shared, subtract: one Dense
  CHECK(model.count_params() == 8);
  // Its row lists both calls' inputs (tf.keras breaks the list after each entry).
  CHECK(contains(model.summary(), "['a[0][0]',"));
  CHECK(contains(model.summary(), " 'b[0][0]']"));
  const Tensor xa = test::random_tensor({16, 3}, 1), xb = test::random_tensor({16, 3}, 2);
  std::vector<float> expected;
  {
    NoGradGuard no_grad;
    Tensor w = model.get_layer("shared").weights()[0];
    expected = ops::matmul(ops::sub(xa, xb), w).to_vector();  // the biases cancel
  }
  CHECK(test::max_abs_diff(model.predict({xa, xb}).to_vector(), expected) < 1e-5f);
  // Fitting y = (a - b)·M reaches M through the one shared kernel.
  const Tensor m = tensor({1, -1, 0.5f, 2, -0.5f, 0}, {3, 2});
  model.compile({.loss = "mse", .optimizer = optimizers::SGD({.learning_rate = 0.1})});
  model.fit({xa, xb}, ops::matmul(ops::sub(xa, xb), m), {.epochs = 300, .batch_size = 16, .verbose = 0});
  CHECK(test::max_abs_diff(model.get_layer("shared").weights()[0].to_vector(), m.to_vector()) < 1e-2f);
  // Called on an input of another size, the shared layer's weights do not fit.
  KerasTensor c = Input({5});
  CHECK(contains(error_of([&] { shared(c); }), "is shared, and its weights do not fit"));
}

TEST_CASE("a model is a layer of another: called on a tensor, its weights are shared and trained") {
  set_backend("reference");
  set_random_seed(3);
  KerasTensor in = Input({4}, "inner_in");
  Model encoder(in, Dense(2, {.activation = "tanh", .name = "code"})(in), "encoder");
  KerasTensor outer_in = Input({4}, "outer_in");
  KerasTensor code = encoder(outer_in);
  Model classifier(outer_in, Dense(3, {.activation = "softmax", .name = "head"})(code), "classifier");
  REQUIRE(classifier.size() == 3);
  CHECK(classifier.layer(1).class_name() == "Functional");
  CHECK(classifier.layer(1).name() == "encoder");
  CHECK(classifier.layer(1).weight_names() == std::vector<std::string>{"code/kernel", "code/bias"});
  const Tensor x = test::random_tensor({8, 4}, 5);
  const std::vector<float> before = encoder.predict(x).to_vector();
  classifier.compile("categorical_crossentropy", "adam");
  classifier.fit(x, to_categorical(tensor({0, 1, 2, 0, 1, 2, 0, 1}, {8}), 3), {.epochs = 3, .verbose = 0});
  CHECK(encoder.predict(x).to_vector() != before);  // the encoder's own weights trained
  // Saved and loaded, the nested model comes back with its weights.
  const std::string path = test::scratch("nested.h5");
  classifier.save(path);
  Model loaded = load_model(path);
  CHECK(loaded.layer(1).class_name() == "Functional");
  CHECK(test::max_abs_diff(loaded.predict(x).to_vector(), classifier.predict(x).to_vector()) < 1e-6f);
}

TEST_CASE("two inputs and two outputs: lists or names, a loss per output, loss_weights, Keras' log names") {
  set_backend("reference");
  set_random_seed(4);
  Model model = two_headed();
  CHECK(model.output_names() == std::vector<std::string>{"cls", "reg"});
  model.compile({.loss = "mse",
                 .optimizer = "adam",
                 .metrics = {"accuracy"},
                 .losses = {{"cls", "categorical_crossentropy"}},
                 .loss_weights = {{"cls", 1.0}, {"reg", 0.5}}});
  const Tensor a = test::random_tensor({32, 4}, 6), b = test::random_tensor({32, 3}, 7);
  std::vector<float> labels;
  for (int i = 0; i < 32; ++i) labels.push_back(float(i % 3));
  const Tensor y_cls = to_categorical(tensor(labels, {32}), 3), y_reg = test::random_tensor({32, 1}, 8);
  History h = model.fit({a, b}, {y_cls, y_reg}, {.epochs = 2, .batch_size = 8, .verbose = 0});
  for (const char* key : {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_accuracy"}) {
    CAPTURE(key);
    CHECK(h.history[key].size() == 2);
  }
  auto by_list = model.evaluate({a, b}, {y_cls, y_reg}, 8);
  CHECK(by_list.at("loss") == doctest::Approx(by_list.at("cls_loss") + 0.5 * by_list.at("reg_loss")).epsilon(1e-5));
  // The same data by name, in any order.
  auto by_name = model.evaluate(std::map<std::string, Tensor>{{"extra", b}, {"features", a}},
                                std::map<std::string, Tensor>{{"reg", y_reg}, {"cls", y_cls}}, 8);
  CHECK(by_name.at("loss") == doctest::Approx(by_list.at("loss")));
  std::vector<Tensor> out = model.predict_outputs({a, b});
  REQUIRE(out.size() == 2);
  CHECK(out[0].shape() == Shape{32, 3});
  CHECK(out[1].shape() == Shape{32, 1});
  CHECK(contains(error_of([&] { model.predict({a, b}); }), "predict_outputs"));
  CHECK(contains(error_of([&] { model.fit({a}, {y_cls, y_reg}); }), "2 inputs (features, extra)"));
  CHECK(contains(error_of([&] { model.evaluate(std::map<std::string, Tensor>{{"feature", a}, {"extra", b}},
                                               {y_cls, y_reg}); }),
                 "no input named 'feature'"));
  CHECK(contains(error_of([&] { model.compile({.loss = "mse", .losses = {{"class", "mse"}}}); }),
                 "names output 'class'"));
  // Saved, the losses and loss weights per output come back with the model.
  const std::string path = test::scratch("two_headed.h5");
  model.save(path);
  Model loaded = load_model(path);
  CHECK(loaded.compile_options().losses.at("cls") == "categorical_crossentropy");
  CHECK(loaded.compile_options().losses.at("reg") == "mse");
  CHECK(loaded.compile_options().loss_weights.at("reg") == 0.5);
  CHECK(loaded.evaluate({a, b}, {y_cls, y_reg}, 8).at("loss") == doctest::Approx(by_list.at("loss")).epsilon(1e-6));
}

TEST_CASE("Model(model.input(), layer.output()) cuts a feature extractor sharing the weights") {
  set_backend("reference");
  set_random_seed(9);
  Model model = test::small_residual_cnn();
  const Layer& add = model.layer(3);
  Model features(model.input(), add.output(), "features");
  CHECK(features.output_shape() == Shape{28, 28, 4});
  CHECK(features.size() == 4);  // image, both convolutions, add
  auto [x, y] = digits(16);
  std::vector<float> direct = features.predict(x).to_vector();
  CHECK(direct == model.predict_until(x, 3).to_vector());
  // The extractor shares the weights: training the model changes its features.
  model.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  CHECK(features.predict(x).to_vector() != direct);
}

TEST_CASE("merge layers compute Keras' values, broadcasting as Keras does, on every backend") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    KerasTensor a = Input({2, 3}), b = Input({2, 3}), g = Input({1, 3}), v = Input({3});
    const Tensor xa = tensor({1, -2, 3, 0, 5, -6}, {1, 2, 3}), xb = tensor({4, 4, -1, 2, -3, 0}, {1, 2, 3});
    const Tensor xg = tensor({2, 0.5f, -1}, {1, 1, 3}), xv = tensor({10, 20, 30}, {1, 3});
    auto run = [&](const LayerSpec& layer, std::vector<KerasTensor> in, std::vector<Tensor> x) {
      Model m(in, layer(in));
      return m.predict(x).to_vector();
    };
    CHECK(run(Add(), {a, b}, {xa, xb}) == std::vector<float>{5, 2, 2, 2, 2, -6});
    CHECK(run(Subtract(), {a, b}, {xa, xb}) == std::vector<float>{-3, -6, 4, -2, 8, -6});
    CHECK(run(Multiply(), {a, g}, {xa, xg}) == std::vector<float>{2, -1, -3, 0, 2.5f, 6});  // (2,3)·(1,3)
    CHECK(run(Average(), {a, b}, {xa, xb}) == std::vector<float>{2.5f, 1, 1, 1, 1, -3});
    CHECK(run(Maximum(), {a, b}, {xa, xb}) == std::vector<float>{4, 4, 3, 2, 5, 0});
    CHECK(run(Minimum(), {a, b}, {xa, xb}) == std::vector<float>{1, -2, -1, 0, -3, -6});
    CHECK(run(Add(), {a, v}, {xa, xv}) == std::vector<float>{11, 18, 33, 10, 25, 24});  // (3) gains an axis
    CHECK(run(Concatenate(), {a, b}, {xa, xb}) == std::vector<float>{1, -2, 3, 4, 4, -1, 0, 5, -6, 2, -3, 0});
    CHECK(run(Concatenate(1), {a, b}, {xa, xb}) == std::vector<float>{1, -2, 3, 0, 5, -6, 4, 4, -1, 2, -3, 0});
    Model three({a, b}, Add()({a, b, a}));
    CHECK(three.predict({xa, xb}).to_vector() == std::vector<float>{6, 0, 5, 2, 7, -12});
  }
}

TEST_CASE("gradients through the merge layers match finite differences") {
  set_backend("reference");
  KerasTensor a = Input({4}), b = Input({4});
  KerasTensor merged = Concatenate()({Multiply()({a, b}), Maximum()({a, b}), Minimum()({a, b}), Average()({a, b}),
                                      Subtract()({a, b})});
  Model model({a, b}, merged);
  const Tensor r = test::random_tensor({2, 20}, 11);
  Tensor xa = tensor({0.5f, -1, 2, 0.3f, -0.7f, 1.2f, 0.1f, -2}, {2, 4});
  Tensor xb = tensor({1.5f, 0.4f, -1, 0.6f, 0.2f, -0.9f, 1.1f, -1.5f}, {2, 4});
  auto loss_of = [&](const Tensor& p, const Tensor& q) { return ops::sum(ops::mul(model.run({p, q}, false, 0)[0], r)); };
  xa.set_requires_grad(true);
  xb.set_requires_grad(true);
  std::vector<Tensor> g = gradients(loss_of(xa, xb), {xa, xb});
  xa.set_requires_grad(false);
  xb.set_requires_grad(false);
  NoGradGuard no_grad;
  const float h = 1e-3f;
  for (int which = 0; which < 2; ++which) {
    std::vector<float> base = (which ? xb : xa).to_vector(), analytic = g[size_t(which)].to_vector();
    for (size_t i = 0; i < base.size(); ++i) {
      CAPTURE(which);
      CAPTURE(i);
      std::vector<float> p = base, m = base;
      p[i] += h, m[i] -= h;
      auto at = [&](const std::vector<float>& v) {
        return which ? loss_of(xa, tensor(v, {2, 4})).item() : loss_of(tensor(v, {2, 4}), xb).item();
      };
      const double numeric = (double(at(p)) - double(at(m))) / (2 * h);
      CHECK(std::fabs(analytic[i] - numeric) < 1e-2 + 1e-2 * std::fabs(numeric));
    }
  }
}

TEST_CASE("a functional model's config and .h5 file round-trip, training state included") {
  set_backend("onednn");
  set_random_seed(12);
  Model model = test::small_residual_cnn(true);
  auto [x, y] = digits(64);
  model.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  // JSON: the same graph, so the same predictions once the weights are copied.
  Model copy = model_from_json(model.to_json());
  CHECK_FALSE(copy.is_sequential());
  CHECK(copy.size() == model.size());
  for (size_t i = 0; i < model.size(); ++i) copy.layer(i).set_weights(model.layer(i).get_weights());
  CHECK(test::max_abs_diff(copy.predict(x).to_vector(), model.predict(x).to_vector()) < 1e-6f);
  CHECK(contains(error_of([&] { Sequential s = model_from_json(model.to_json()); }), "functional model"));
  // .h5: architecture, weights (BatchNormalization's moving statistics too) and optimizer state.
  const std::string path = test::scratch("residual.h5");
  model.save(path);
  Model loaded = load_model(path);
  CHECK(test::flat_weights_of(loaded) == test::flat_weights_of(model));
  CHECK(loaded.optimizer_state().iterations == model.optimizer_state().iterations);
  model.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  loaded.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  CHECK(test::max_abs_diff(test::flat_weights_of(loaded), test::flat_weights_of(model)) < 1e-6f);
}

TEST_CASE("real Keras 3 and tf_keras functional files predict as Keras did, on every backend") {
  const Tensor images = test::read_npy(kKerasV2 + "/images.input.npy");
  for (const std::string& backend_name : available_backends()) {
    for (const char* name : {"k3_residual_multiply", "tfk2_residual_multiply", "k3_inception_bn", "tfk2_inception_bn"}) {
      CAPTURE(backend_name);
      CAPTURE(name);
      set_backend(backend_name);
      Model model = load_model(kKerasV2 + "/" + name + ".h5");
      CHECK_FALSE(model.is_sequential());
      const std::vector<float> expected = test::read_npy(kKerasV2 + "/" + name + ".ref.npy").to_vector();
      CHECK(test::max_abs_diff(model.predict(images, 256).to_vector(), expected) < 1e-4f);
    }
  }
  // The inception block: three branches into one Concatenate, as the file's graph has them.
  set_backend("reference");
  Model inception = load_model(kKerasV2 + "/k3_inception_bn.h5");
  const Layer& concat = inception.get_layer("inc_concat");
  CHECK(concat.input_shapes().size() == 3);
  CHECK(contains(inception.summary(), "['inc_a_1x1[0][0]',"));
}

TEST_CASE("a bad graph gives one error naming the layer and the node") {
  set_backend("reference");
  namespace json = boost::json;
  auto graph = [](json::array layers, json::value inputs, json::value outputs) {
    return json::value{{"class_name", "Functional"},
                       {"config", {{"name", "g"}, {"layers", layers}, {"input_layers", inputs}, {"output_layers", outputs}}}};
  };
  const json::object input{{"class_name", "InputLayer"},
                           {"name", "in"},
                           {"config", {{"batch_input_shape", {nullptr, 4}}, {"name", "in"}}},
                           {"inbound_nodes", json::array{}}};
  auto dense = [](const char* name, json::array inbound) {
    return json::object{{"class_name", "Dense"},
                        {"name", name},
                        {"config", {{"name", name}, {"units", 4}}},
                        {"inbound_nodes", inbound}};
  };
  // Keras 2's inbound_nodes of a layer called once, on call `index` of `layer`: [[[layer, index, 0, {}]]],
  // built step by step because brace initialisation of nested json::arrays differs between compilers.
  auto reads = [](const char* layer, int index = 0) {
    json::array tensor{json::string(layer), index, 0, json::object{}};
    json::array node;
    node.emplace_back(std::move(tensor));
    json::array nodes;
    nodes.emplace_back(std::move(node));
    return nodes;
  };
  // A cycle: a reads b, b reads a.
  CHECK(contains(error_of([&] {
          Model::from_config(graph({input, dense("a", reads("b")), dense("b", reads("a"))}, {"in", 0, 0}, {"b", 0, 0}));
        }),
        "(a cycle in inbound_nodes)"));
  // A layer that is not there, and a call that does not exist.
  CHECK(contains(error_of([&] {
          Model::from_config(graph({input, dense("a", reads("nowhere"))}, {"in", 0, 0}, {"a", 0, 0}));
        }),
        "layer 'a' (Dense), inbound node 0: it reads layer 'nowhere', which the model does not have"));
  CHECK(contains(error_of([&] {
          Model::from_config(graph({input, dense("a", reads("in", 3))}, {"in", 0, 0}, {"a", 0, 0}));
        }),
        "it reads call 3 of layer 'in', which is called only 1 time(s)"));
  // Merge inputs whose shapes do not agree.
  KerasTensor p = Input({4}), q = Input({5});
  CHECK(contains(error_of([&] { Add("sum")({p, q}); }), "Add 'sum': inputs of shapes (None, 4), (None, 5) do not broadcast"));
  // An output that does not depend on the inputs.
  KerasTensor r = Dense(2)(q);
  CHECK(contains(error_of([&] { Model(p, r); }), "the outputs depend on input"));
  // A class no plugin provides.
  CHECK(contains(error_of([&] { LayerSpec("NoSuchLayer", {})(p); }), "NoSuchLayer"));
  CHECK(contains(error_of([&] {
          Model::from_config(graph({input, json::object{{"class_name", "NoSuchLayer"}, {"name", "x"}, {"config", json::object{}},
                                                        {"inbound_nodes", reads("in")}}},
                                   {"in", 0, 0}, {"x", 0, 0}));
        }),
        "NoSuchLayer"));
  // Keras 3's inbound-node form reads too, and its errors name the node the same way.
  json::object k3_dense = dense("a", json::array{});
  k3_dense["inbound_nodes"] = json::array{json::object{
      {"args", json::array{json::object{{"class_name", "__keras_tensor__"},
                                        {"config", {{"shape", {nullptr, 4}}, {"keras_history", {"in", 0, 0}}}}}}},
      {"kwargs", json::object{}}}};
  Model k3 = Model::from_config(graph({input, k3_dense}, {"in", 0, 0}, {"a", 0, 0}));
  CHECK(k3.output_shape() == Shape{4});
}

TEST_CASE("every backend trains and predicts a functional residual network") {
  auto [x, y] = digits(96);
  std::vector<float> reference_prediction;
  for (const std::string& backend_name : test::configured_backends()) {
    CAPTURE(backend_name);
    if (!test::backend_usable(backend_name)) {
      MESSAGE("skipped on " << backend_name << ": not available here");
      continue;
    }
    set_backend(backend_name);
    set_random_seed(21);
    Model model = test::small_residual_cnn(true);
    History h = model.fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 0});
    CHECK(h.history["loss"][2] < h.history["loss"][0]);
    std::vector<float> p = model.predict(x).to_vector();
    if (reference_prediction.empty()) reference_prediction = p;
    else CHECK(test::max_abs_diff(p, reference_prediction) < 2e-2f);  // float rounding over 3 epochs
  }
}
