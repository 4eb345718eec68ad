// Keras .h5 model files: real files from tf.keras 2.4, tf.keras 2.14 and Keras 3.3 load and give
// their documented outputs and MNIST accuracy; lamina's own files round-trip exactly, training
// included; every variant of the layout is read; bad files give clear errors.
// The files and the MNIST test set are in tests/data (see tests/data/README.md).
#include "support.hpp"

#include <lamina/h5.hpp>

#include <boost/json.hpp>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

using namespace lamina;
using lamina::test::run_cli;
using lamina::test::scratch;
using namespace lamina::layers;
using test::error_of;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

const std::string kData = std::string(LAMINA_SOURCE_DIR) + "/tests/data";
const std::string kTf24 = kData + "/keras_models/tfk2.4.0_mlp_dropout_adam_dig94.h5";
const std::string kTf214 = kData + "/keras_models/tfk2.14.0_cnn_adam_01110001-ml-mnist.h5";
const std::string kK3 = kData + "/keras_models/k3.3.3_mlp_adam_4bumuhammad.h5";

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("message was: " << s);
  return false;
}

// A writable copy of `source`.
std::string copy_of(const std::string& source, const std::string& name) {
  std::string p = scratch(name);
  fs::copy_file(source, p, fs::copy_options::overwrite_existing);
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  return p;
}

// Rewrites the model_config of a copied file.
void edit_config(const std::string& path, const std::function<void(json::object&)>& edit) {
  h5::File f(path, h5::File::read_write);
  json::value v = json::parse(f.string_attribute("/", "model_config"));
  edit(v.as_object());
  f.set_attribute("/", "model_config", json::serialize(v), h5::StringType::variable_ascii);
  f.close();
}

json::array& layers_of(json::object& config) {
  return config.at("config").as_object().at("layers").as_array();
}
json::object& layer_config(json::object& config, const std::string& name) {
  for (auto& l : layers_of(config))
    if (l.as_object().at("config").as_object().at("name").as_string() == name)
      return l.as_object().at("config").as_object();
  FAIL("no layer " << name);
  throw;
}

// The README's two reference images, 28x28 in [0, 1].
std::vector<float> zeros_image() {
  return std::vector<float>(784, 0.0f);
}
std::vector<float> pattern_image() {
  std::vector<float> v(784);
  for (int h = 0; h < 28; ++h)
    for (int w = 0; w < 28; ++w) v[size_t(h * 28 + w)] = float(((h * 28 + w) * 37) % 256) / 255.0f;
  return v;
}

Tensor batch_of(const std::vector<float>& image, const Shape& input_shape) {
  Shape s{1};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  return Tensor::from_vector(image, s);
}

struct Reference {
  std::string file;
  std::vector<float> zeros, pattern;
  double accuracy;
};

// From tests/data/keras_models/README.md (float64 forward passes of the stored weights).
const std::vector<Reference>& references() {
  static const std::vector<Reference> r{
      {kTf24,
       {-7.39738887e-01, 5.29497680e-02, -5.91710026e-01, -1.27821983e+00, -5.75074874e-01, 7.42412848e-01,
        -5.35063948e-01, 1.38591939e-01, -1.09863342e+00, -7.71376700e-01},
       {-1.15539293e+01, -1.41017045e+01, 2.53908657e-01, 6.71654728e+00, -4.41332107e+01, 5.85259226e+00,
        -5.10238585e+00, 2.08091108e+00, -2.20314503e+00, -1.46444677e+01},
       0.9768},
      {kTf214,
       {1.07831673e-01, 1.40292693e-01, 9.19916517e-02, 7.79573550e-02, 1.02790455e-01, 9.86825559e-02,
        1.05945317e-01, 9.93454790e-02, 9.73643088e-02, 7.77985123e-02},
       {3.19426292e-03, 6.95059585e-01, 1.95060740e-05, 5.92812891e-08, 6.38847184e-02, 4.59942688e-05,
        2.37452708e-01, 1.71375525e-04, 1.50330500e-04, 2.14599343e-05},
       0.9905},
      {kK3,
       {6.30250310e-02, 8.44317196e-02, 7.88844020e-02, 4.71692745e-02, 1.27118314e-01, 2.39309345e-01,
        1.01220815e-01, 9.69686528e-02, 7.75803425e-02, 8.42921039e-02},
       {3.02122984e-02, 1.32436255e-07, 4.36839875e-04, 2.50145890e-02, 1.77641296e-07, 2.92472516e-01,
        2.89376002e-03, 1.17535262e-05, 5.38878230e-01, 1.10079703e-01},
       0.9714},
  };
  return r;
}

void reference_outputs_match(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  for (const Reference& r : references()) {
    Sequential model = load_model(r.file);
    std::vector<float> z = model.predict(batch_of(zeros_image(), model.input_shape())).to_vector();
    std::vector<float> p = model.predict(batch_of(pattern_image(), model.input_shape())).to_vector();
    float dz = test::max_abs_diff(z, r.zeros), dp = test::max_abs_diff(p, r.pattern);
    MESSAGE(fs::path(r.file).filename().string()
            << " on " << backend_name << ": max difference zeros " << dz << ", pattern " << dp);
    CHECK(dz < 1e-5f);
    CHECK(dp < 1e-5f);
  }
}

// The MNIST test images scaled to [0, 1] and their labels.
std::pair<Tensor, std::vector<float>> mnist_test() {
  Tensor x = read_idx(kData + "/mnist/t10k-images-idx3-ubyte.gz") / 255.0f;
  return {x, read_idx(kData + "/mnist/t10k-labels-idx1-ubyte.gz").to_vector()};
}

double accuracy_of(const Model& model, const Tensor& images, const std::vector<float>& labels) {
  Shape s{-1};
  s.insert(s.end(), model.input_shape().begin(), model.input_shape().end());
  std::vector<float> p = model.predict(images.reshape(s), 256).to_vector();
  int64_t k = model.output_shape().back(), hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = p.data() + i * size_t(k);
    hits += std::max_element(row, row + k) - row == int64_t(labels[i]);
  }
  return double(hits) / double(labels.size());
}

// Small enough to train in a blink on any backend, with every weight kind: conv, dense, bias.
Sequential small_cnn(const OptimizerSpec& optimizer) {
  Sequential m("small_cnn");
  m.add(Conv2D(4, {3, 3}, {.activation = "relu", .input_shape = {8, 8, 1}}));
  m.add(MaxPooling2D({2, 2}));
  m.add(Flatten());
  m.add(Dense(6, {.activation = "relu"}));
  m.add(Dropout(0.25));
  m.add(Dense(3, {.activation = "softmax"}));
  m.compile({.loss = "categorical_crossentropy", .optimizer = optimizer, .metrics = {"accuracy"}});
  return m;
}

std::pair<Tensor, Tensor> small_data(int n, uint64_t seed) {
  Tensor x = test::random_tensor({n, 8, 8, 1}, seed, 0.0f, 1.0f);
  std::vector<float> labels;
  for (int i = 0; i < n; ++i) labels.push_back(float(i % 3));
  return {x, to_categorical(Tensor::from_vector(labels, {n}), 3)};
}

std::vector<float> all_slots(const Model& m) {
  std::vector<float> out;
  for (const auto& per_weight : m.optimizer_state().slots)
    for (const Tensor& s : per_weight) {
      auto v = s.to_vector();
      out.insert(out.end(), v.begin(), v.end());
    }
  return out;
}

// Save, load, and train both the original and the loaded model on: the results must be identical,
// i.e. the same as never having saved.
void round_trip(const std::string& backend_name, const OptimizerSpec& optimizer) {
  test::use_backend_or_skip(backend_name);
  set_random_seed(21);
  auto [x, y] = small_data(48, 5);
  Sequential a = small_cnn(optimizer);
  a.fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  std::string path = scratch("round_trip_" + backend_name + "_" + optimizer.class_name + ".h5");
  a.save(path);

  Sequential b = load_model(path);
  REQUIRE(b.compiled());
  CHECK(b.name() == "small_cnn");
  CHECK(b.size() == a.size());
  CHECK(b.compile_options().loss == "categorical_crossentropy");
  CHECK(b.optimizer_state().iterations == a.optimizer_state().iterations);
  CHECK(test::flat_weights_of(b) == test::flat_weights_of(a));
  CHECK(all_slots(b) == all_slots(a));
  CHECK(b.predict(x).to_vector() == a.predict(x).to_vector());

  set_random_seed(77);
  a.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  set_random_seed(77);
  b.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  CHECK(b.optimizer_state().iterations == a.optimizer_state().iterations);
  CHECK(test::flat_weights_of(b) == test::flat_weights_of(a));
  CHECK(all_slots(b) == all_slots(a));
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// real Keras files

TEST_CASE("real Keras files: layers, shapes, training config and weights as stored") {
  set_backend("reference");
  Sequential a = load_model(kTf24);
  CHECK(a.input_shape() == Shape{28, 28});
  REQUIRE(a.size() == 4);
  CHECK(a.layer(0).class_name() == "Flatten");
  CHECK(a.layer(2).class_name() == "Dropout");
  CHECK(a.layer(3).name() == "dense_3");
  CHECK(a.compile_options().from_logits);
  CHECK(a.count_params() == 101770);
  auto k = a.layer(1).get_weights()[0].to_vector();
  CHECK(k[0] == doctest::Approx(4.99895290e-02).epsilon(1e-6));
  CHECK(k[1] == doctest::Approx(-1.93735547e-02).epsilon(1e-6));
  double sum = 0;
  for (float v : k) sum += v;
  CHECK(sum == doctest::Approx(-6.390486e+02).epsilon(1e-5));

  Sequential b = load_model(kTf214);
  CHECK(b.input_shape() == Shape{28, 28, 1});
  REQUIRE(b.size() == 8);
  CHECK(b.layer(1).class_name() == "MaxPooling2D");
  CHECK(b.layer(4).get_weights()[0].shape() == Shape{3, 3, 64, 64});
  CHECK(b.layer(0).get_weights()[0].to_vector()[0] == doctest::Approx(1.48484558e-01).epsilon(1e-6));
  CHECK(b.compile_options().optimizer.class_name == "Custom>Adam");
  CHECK(b.compile_options().metrics == std::vector<std::string>{"accuracy"});

  Sequential c = load_model(kK3);
  CHECK(c.input_shape() == Shape{784});
  CHECK(c.layer(2).get_weights()[0].to_vector()[1] == doctest::Approx(-9.01686549e-02).epsilon(1e-6));
  CHECK(c.count_params() == 55050);
}

TEST_CASE("real Keras files: the optimizer state of every Keras generation is restored") {
  set_backend("reference");
  struct Case {
    std::string file, slot_dataset;
    int64_t iterations;
  };
  // iterations as stored: tf.keras 2.4 "Adam/iter:0", 2.14 "iteration:0", Keras 3 "adam/iteration".
  for (const Case& c : {Case{kTf24, "optimizer_weights/Adam/dense_2/kernel/v:0", 9375},
                        Case{kTf214, "optimizer_weights/Adam/v/conv2d/kernel:0", 4690},
                        Case{kK3, "optimizer_weights/adam/sequential_dense_kernel_velocity", 3750}}) {
    Sequential m = load_model(c.file);
    OptimizerState s = m.optimizer_state();
    CHECK(s.optimizer.class_name == "Adam");
    CHECK(s.iterations == c.iterations);
    REQUIRE(s.slot_names == std::vector<std::string>{"momentum", "velocity"});
    h5::File f(c.file);
    CHECK(s.slots[0][1].to_vector() == f.read<float>(c.slot_dataset));
  }
}

TEST_CASE("real Keras files give their reference outputs within 1e-5 on reference") {
  reference_outputs_match("reference");
}
TEST_CASE("real Keras files give their reference outputs within 1e-5 on onednn") {
  reference_outputs_match("onednn");
}
TEST_CASE("real Keras files give their reference outputs within 1e-5 on opencl") {
  reference_outputs_match("opencl");
}

TEST_CASE("real Keras files reach their documented accuracy on the 10,000 MNIST test images") {
  auto [images, labels] = mnist_test();
  for (const Reference& r : references()) {
    Sequential model = load_model(r.file);
    double accuracy = accuracy_of(model, images, labels);
    MESSAGE(fs::path(r.file).filename().string() << " on " << backend() << ": accuracy " << accuracy);
    CHECK(std::fabs(accuracy - r.accuracy) < 1e-9);
  }
}

TEST_CASE("a real Keras model resumes training in lamina") {
  set_backend("reference");
  Sequential m = load_model(kK3);
  auto [images, labels] = mnist_test();
  Tensor x = images.slice(0, 256).reshape({-1, 784});
  std::vector<float> l(labels.begin(), labels.begin() + 256);
  Tensor y = to_categorical(Tensor::from_vector(l, {256}), 10);
  double before = m.evaluate(x, y).at("loss");
  History h = m.fit(x, y, {.epochs = 1, .batch_size = 64, .verbose = 0});
  CHECK(m.optimizer_state().iterations == 3750 + 4);
  CHECK(std::isfinite(h.history.at("loss").back()));
  CHECK(m.evaluate(x, y).at("loss") < before + 0.05);
}

// ------------------------------------------------------------------------------------------------
// lamina's own files

TEST_CASE("save then load: identical predictions and identical continued training, Adam, on reference") {
  round_trip("reference", optimizers::Adam());
}
TEST_CASE("save then load: identical predictions and identical continued training, Adam, on onednn") {
  round_trip("onednn", optimizers::Adam());
}
TEST_CASE("save then load: identical predictions and identical continued training, Adam, on opencl") {
  round_trip("opencl", optimizers::Adam());
}
TEST_CASE(
    "save then load: identical continued training with SGD momentum, Adadelta and RMSprop, on reference") {
  round_trip("reference", optimizers::SGD({.learning_rate = 0.05, .momentum = 0.9, .nesterov = true}));
  round_trip("reference", optimizers::Adadelta());
  round_trip("reference", optimizers::RMSprop());
}
TEST_CASE("save then load: identical continued training with SGD momentum, Adadelta and RMSprop, on onednn") {
  round_trip("onednn", optimizers::SGD({.learning_rate = 0.05, .momentum = 0.9}));
  round_trip("onednn", optimizers::Adadelta());
  round_trip("onednn", optimizers::RMSprop());
}
TEST_CASE("save then load: identical continued training with SGD momentum, Adadelta and RMSprop, on opencl") {
  round_trip("opencl", optimizers::SGD({.learning_rate = 0.05, .momentum = 0.9}));
  round_trip("opencl", optimizers::Adadelta());
  round_trip("opencl", optimizers::RMSprop());
}

TEST_CASE("a lamina file has the tf.keras 2.x layout Keras loaders expect") {
  set_backend("reference");
  set_random_seed(3);
  Sequential m = small_cnn("adam");
  std::string path = scratch("layout.h5");
  m.save(path);
  h5::File f(path);
  CHECK(f.string_attribute("/", "backend") == "tensorflow");
  CHECK(f.string_attribute("/", "keras_version").rfind("2.", 0) == 0);
  json::object config = json::parse(f.string_attribute("/", "model_config")).as_object();
  CHECK(config.at("class_name") == "Sequential");
  json::array& layers = layers_of(config);
  CHECK(layers[0].as_object().at("class_name") == "InputLayer");
  json::object& input = layers[0].as_object().at("config").as_object();
  CHECK(input.at("batch_input_shape") == json::parse("[null, 8, 8, 1]"));
  CHECK(!input.contains("ragged"));
  json::object& conv = layers[1].as_object().at("config").as_object();
  CHECK(conv.at("batch_input_shape") == json::parse("[null, 8, 8, 1]"));
  CHECK(conv.at("kernel_initializer").as_object().at("class_name") == "VarianceScaling");
  json::object training = json::parse(f.string_attribute("/", "training_config")).as_object();
  for (const char* key :
       {"loss", "metrics", "weighted_metrics", "sample_weight_mode", "loss_weights", "optimizer_config"})
    CHECK(training.contains(key));
  CHECK(f.strings_attribute("model_weights", "layer_names") ==
        std::vector<std::string>{"conv2d", "max_pooling2d", "flatten", "dense", "dropout", "dense_1"});
  CHECK(f.attribute_info("model_weights", "layer_names").dtype == h5::DType::string);
  CHECK(f.strings_attribute("model_weights/conv2d", "weight_names") ==
        std::vector<std::string>{"conv2d/kernel:0", "conv2d/bias:0"});
  // weightless layers: an empty float64 array, as h5py writes np.asarray([])
  h5::DatasetInfo empty = f.attribute_info("model_weights/flatten", "weight_names");
  CHECK(empty.dtype == h5::DType::float64);
  CHECK(empty.shape == Shape{0});
  CHECK(f.info("model_weights/dense/dense/kernel:0").shape == Shape{36, 6});
  CHECK(f.info("model_weights/dense/dense/kernel:0").dtype == h5::DType::float32);
  // tf.keras' optimizer order: the counter, every weight's first slot, then every weight's second
  CHECK(f.info("optimizer_weights/Adam/iter:0").dtype == h5::DType::int64);
  auto names = f.strings_attribute("optimizer_weights", "weight_names");
  REQUIRE(names.size() == 1 + 2 * 6);
  CHECK(names[1] == "Adam/conv2d/kernel/momentum:0");
  CHECK(names[2] == "Adam/conv2d/bias/momentum:0");
  CHECK(names[7] == "Adam/conv2d/kernel/velocity:0");
  CHECK(f.info("optimizer_weights/" + names[12]).shape == Shape{3});
}

TEST_CASE("save_weights and load_weights, from a weights file and from a model file") {
  set_backend("reference");
  set_random_seed(4);
  Sequential a = small_cnn("sgd");
  set_random_seed(5);
  Sequential b = small_cnn("sgd");
  REQUIRE(test::flat_weights_of(a) != test::flat_weights_of(b));
  std::string weights = scratch("weights.h5");
  a.save_weights(weights);
  h5::File f(weights);
  CHECK(f.has_attribute("/", "layer_names"));
  CHECK(!f.has_attribute("/", "model_config"));
  f.close();
  b.load_weights(weights);
  CHECK(test::flat_weights_of(b) == test::flat_weights_of(a));

  set_random_seed(6);
  Sequential c = small_cnn("sgd");
  std::string model = scratch("model_for_weights.h5");
  a.save(model);
  c.load_weights(model);
  CHECK(test::flat_weights_of(c) == test::flat_weights_of(a));
  CHECK(contains(error_of([&] { load_model(weights); }), "weights only"));
}

TEST_CASE("a failed save leaves the previous file intact and no temporary file behind") {
  set_backend("reference");
  set_random_seed(8);
  Sequential good = small_cnn("sgd");
  std::string path = scratch("atomic/model.h5");
  fs::create_directories(fs::path(path).parent_path());
  good.save(path);
  auto before = test::flat_weights_of(load_model(path));
  Sequential bad;
  bad.add(Dense(2, {.input_dim = 3, .name = "a/b"}));
  CHECK(contains(error_of([&] { bad.save(path); }), "a/b"));
  CHECK(test::flat_weights_of(load_model(path)) == before);
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(fs::path(path).parent_path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("a model with very many layers gets its layer list split as Keras splits it") {
  set_backend("reference");
  Sequential m("deep");
  m.add(Dense(2, {.input_dim = 2, .name = "first"}));
  for (int i = 0; i < 1800; ++i)
    m.add(Activation("linear", {.name = "a_rather_long_layer_name_for_keras_" + std::to_string(10000 + i)}));
  std::string path = scratch("deep.h5");
  m.save(path);
  h5::File f(path);
  CHECK(!f.has_attribute("model_weights", "layer_names"));
  CHECK(f.has_attribute("model_weights", "layer_names0"));
  CHECK(f.has_attribute("model_weights", "layer_names1"));
  f.close();
  Sequential again = load_model(path);
  REQUIRE(again.size() == m.size());
  CHECK(again.layer(1800).name() == "a_rather_long_layer_name_for_keras_11799");
}

TEST_CASE("saving over a file keeps its permissions, and through a symbolic link keeps the link") {
  set_backend("reference");
  set_random_seed(9);
  Sequential m = small_cnn("sgd");
  std::string dir = scratch("links");
  fs::create_directories(dir);
  std::string target = dir + "/model.h5", link = dir + "/latest.h5";
  m.save(target);
  fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write);
  fs::remove(link);
  fs::create_symlink(target, link);
  m.save(link);
  CHECK(fs::is_symlink(link));
  CHECK((fs::status(target).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(load_model(link).size() == m.size());
}

// ------------------------------------------------------------------------------------------------
// format variants

TEST_CASE("string attributes in any encoding, and split lists, read the same") {
  set_backend("reference");
  Tensor x = batch_of(pattern_image(), {784});
  std::vector<float> expected = load_model(kK3).predict(x).to_vector();
  for (h5::StringType type : {h5::StringType::fixed_ascii, h5::StringType::fixed_utf8,
                              h5::StringType::variable_ascii, h5::StringType::variable_utf8}) {
    std::string path = copy_of(kK3, "encoding.h5");
    {
      h5::File f(path, h5::File::read_write);
      for (const char* a : {"model_config", "training_config", "keras_version", "backend"})
        f.set_attribute("/", a, f.string_attribute("/", a), type);
      auto names = f.strings_attribute("model_weights", "layer_names");
      f.set_attribute("model_weights", "layer_names", names, type);
      for (const auto& n : names)
        f.set_attribute("model_weights/" + n, "weight_names",
                        f.strings_attribute("model_weights/" + n, "weight_names"), type);
      f.close();
    }
    CHECK(load_model(path).predict(x).to_vector() == expected);
  }
  // Keras splits long lists into layer_names0, layer_names1, ...
  std::string path = copy_of(kK3, "split.h5");
  {
    h5::File f(path, h5::File::read_write);
    auto names = f.strings_attribute("model_weights", "layer_names");
    f.remove_attribute("model_weights", "layer_names");
    f.set_attribute("model_weights", "layer_names0",
                    std::vector<std::string>(names.begin(), names.begin() + 2));
    f.set_attribute("model_weights", "layer_names1",
                    std::vector<std::string>(names.begin() + 2, names.end()));
    auto w = f.strings_attribute("model_weights/dense", "weight_names");
    f.remove_attribute("model_weights/dense", "weight_names");
    f.set_attribute("model_weights/dense", "weight_names0", std::vector<std::string>{w[0]});
    f.set_attribute("model_weights/dense", "weight_names1", std::vector<std::string>{w[1]});
    f.close();
  }
  CHECK(load_model(path).predict(x).to_vector() == expected);
}

TEST_CASE("Keras 2.2 configs without an InputLayer, bare layer lists and Keras 3 dtype policies load") {
  set_backend("reference");
  Tensor x = batch_of(pattern_image(), {28, 28});
  std::vector<float> expected = load_model(kTf24).predict(x).to_vector();

  std::string no_input = copy_of(kTf24, "keras22.h5");
  edit_config(no_input, [](json::object& c) {
    auto& layers = layers_of(c);
    layers.erase(layers.begin());  // the first layer keeps batch_input_shape
  });
  CHECK(load_model(no_input).predict(x).to_vector() == expected);

  std::string bare = copy_of(kTf24, "keras21.h5");
  edit_config(bare, [](json::object& c) {
    json::array layers = layers_of(c);
    layers.erase(layers.begin());
    c["config"] = layers;
  });
  CHECK(load_model(bare).predict(x).to_vector() == expected);

  std::string policies = copy_of(kTf24, "keras35.h5");
  edit_config(policies, [](json::object& c) {
    for (auto& l : layers_of(c)) {
      json::object& lc = l.as_object().at("config").as_object();
      lc["dtype"] = json::parse(
          R"({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})");
      lc["some_future_key"] = 1;  // unknown keys are ignored
      l.as_object()["module"] = "keras.layers";
    }
  });
  CHECK(load_model(policies).predict(x).to_vector() == expected);
}

TEST_CASE("a Theano-backend file gets its convolution kernels flipped, as Keras does") {
  set_backend("reference");
  std::string path = copy_of(kTf214, "theano.h5");
  {
    h5::File f(path, h5::File::read_write);
    f.set_attribute("/", "backend", "theano");
    f.close();
  }
  Sequential tf = load_model(kTf214), th = load_model(path);
  std::vector<float> a = tf.layer(0).get_weights()[0].to_vector(),
                     b = th.layer(0).get_weights()[0].to_vector();
  // (3, 3, 1, 32): element (i, j, 0, o) of one is element (2-i, 2-j, 0, o) of the other
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int o = 0; o < 32; ++o)
        CHECK(b[size_t((i * 3 + j) * 32 + o)] == a[size_t(((2 - i) * 3 + (2 - j)) * 32 + o)]);
  CHECK(th.layer(6).get_weights()[0].to_vector() == tf.layer(6).get_weights()[0].to_vector());
}

TEST_CASE("a loaded Keras 3 file saves as a tf.keras 2.x file that loads back the same") {
  set_backend("reference");
  Sequential k3 = load_model(kK3);
  std::string path = scratch("resaved_k3.h5");
  k3.save(path);
  Sequential again = load_model(path);
  Tensor x = batch_of(pattern_image(), {784});
  CHECK(again.predict(x).to_vector() == k3.predict(x).to_vector());
  CHECK(again.optimizer_state().iterations == 3750);
  CHECK(all_slots(again) == all_slots(k3));
  h5::File f(path);
  CHECK(f.string_attribute("/", "model_config").find("registered_name") == std::string::npos);
}

TEST_CASE(
    "with optimizer_layout keras3 the optimizer state lies in Keras 3's order, as Keras 3's own file has "
    "it") {
  set_backend("reference");
  // Keras 3.3.3's file: [iteration, learning_rate, then momentum and velocity per weight]. lamina
  // reads it, writes it in Keras 3's order: position by position the same shapes and the same
  // values, which is what Keras 3's optimizer.set_weights checks and restores.
  Sequential k3 = load_model(kK3);
  const std::string path = scratch("keras3_layout.h5");
  k3.save(path, SaveOptions{.optimizer_layout = OptimizerLayout::keras3});
  h5::File original(kK3), saved(path);
  const auto theirs = original.strings_attribute("optimizer_weights", "weight_names");
  const auto ours = saved.strings_attribute("optimizer_weights", "weight_names");
  REQUIRE(ours.size() == theirs.size());  // 2 + 2 x 6
  for (size_t i = 0; i < ours.size(); ++i) {
    CAPTURE(ours[i]);
    CAPTURE(theirs[i]);
    Shape a, b;
    const std::vector<double> mine = saved.read<double>("optimizer_weights/" + ours[i], &a);
    const std::vector<double> keras = original.read<double>("optimizer_weights/" + theirs[i], &b);
    CHECK(a == b);
    CHECK(mine == keras);
  }
  CHECK(ours[0] == "adam/iteration");
  CHECK(ours[1] == "adam/learning_rate");
  CHECK(ours[2] == "adam/dense_kernel_momentum");  // Keras 3: adam/sequential_dense_kernel_momentum
  CHECK(ours[3] == "adam/dense_kernel_velocity");
  // lamina reads its own Keras 3 layout back whole.
  Sequential again = load_model(path);
  CHECK(again.optimizer_state().iterations == 3750);
  CHECK(all_slots(again) == all_slots(k3));
}

TEST_CASE("Keras 3's order groups slots as each Keras 3 optimizer creates them") {
  set_backend("reference");
  struct Case {
    OptimizerSpec optimizer;
    std::vector<std::string> first_slots;  // after the counter and the learning rate
  };
  // Adadelta interleaves its two slots per weight; RMSprop with momentum lists every velocity, then
  // every momentum; SGD without momentum has no slots.
  for (const Case& c :
       {Case{optimizers::Adadelta(),
             {"adadelta/conv2d_kernel_accumulated_grad", "adadelta/conv2d_kernel_accumulated_delta_var",
              "adadelta/conv2d_bias_accumulated_grad"}},
        Case{OptimizerSpec{"RMSprop", {{"momentum", 0.5}}},
             {"rm_sprop/conv2d_kernel_velocity", "rm_sprop/conv2d_bias_velocity",
              "rm_sprop/dense_kernel_velocity"}},
        Case{optimizers::SGD(), {}}}) {
    set_random_seed(3);
    Sequential m = small_cnn(c.optimizer);
    auto [x, y] = small_data(16, 5);
    m.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
    const std::string path = scratch("keras3_groups.h5");
    m.save(path, SaveOptions{.optimizer_layout = OptimizerLayout::keras3});
    const auto names = h5::File(path).strings_attribute("optimizer_weights", "weight_names");
    REQUIRE(names.size() == 2 + m.optimizer_state().slot_names.size() * 6);
    CHECK(std::vector<std::string>(names.begin() + 2, names.begin() + 2 + ptrdiff_t(c.first_slots.size())) ==
          c.first_slots);
    Sequential again = load_model(path);
    CHECK(all_slots(again) == all_slots(m));
  }
}

// ------------------------------------------------------------------------------------------------
// bad input

TEST_CASE("bad model files give clear errors naming the file and what is wrong") {
  set_backend("reference");
  std::string truncated = scratch("truncated.h5");
  {
    std::ifstream in(kK3, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  std::string e = error_of([&] { load_model(truncated); });
  CHECK(contains(e, truncated));
  CHECK(contains(e, "truncated"));

  std::string text = scratch("text.h5");
  std::ofstream(text) << "hello, I am not HDF5\n";
  CHECK(contains(error_of([&] { load_model(text); }), text + " is not an HDF5 file"));
  std::string zip = scratch("model.keras");
  std::ofstream(zip, std::ios::binary) << std::string("PK\x03\x04\x14\0\0\0", 8) << "config.json";
  CHECK(contains(error_of([&] { load_model(zip); }), ".keras"));
  std::string empty = scratch("empty.h5");
  std::ofstream(empty).close();
  CHECK(contains(error_of([&] { load_model(empty); }), "is empty"));
  CHECK(contains(error_of([&] { load_model(scratch("missing.h5")); }), "does not exist"));

  std::string not_json = copy_of(kK3, "not_json.h5");
  {
    h5::File f(not_json, h5::File::read_write);
    f.set_attribute("/", "model_config", "{\"class_name\": \"Sequential\", \"config\": {oops");
    f.close();
  }
  e = error_of([&] { load_model(not_json); });
  CHECK(contains(e, not_json));
  CHECK(contains(e, "'model_config' is not valid JSON"));

  for (const char* config : {"\"a string\"", "42", R"({"class_name": "Functional", "config": {}})",
                             R"({"class_name": "Sequential", "config": {"layers": [{"config": {}}]}})"}) {
    std::string path = copy_of(kK3, "not_a_model.h5");
    {
      h5::File f(path, h5::File::read_write);
      f.set_attribute("/", "model_config", config);
      f.close();
    }
    e = error_of([&] { load_model(path); });
    CHECK(contains(e, path));
    CHECK(contains(e, "model_config"));
  }

  std::string no_config = copy_of(kK3, "no_config.h5");
  {
    h5::File f(no_config, h5::File::read_write);
    f.remove_attribute("/", "model_config");
    f.close();
  }
  CHECK(contains(error_of([&] { load_model(no_config); }), "no 'model_config' attribute"));
}

TEST_CASE("weights that do not fit the config, and absurd sizes, are errors naming the layer") {
  set_backend("reference");
  std::string shape = copy_of(kK3, "shape_mismatch.h5");
  edit_config(shape, [](json::object& c) { layer_config(c, "dense_1")["units"] = 65; });
  std::string e = error_of([&] { load_model(shape); });
  CHECK(contains(e, shape));
  CHECK(contains(e, "layer 'dense_1'"));
  CHECK(contains(e, "sequential/dense_1/kernel"));
  CHECK(contains(e, "(64, 64)"));

  std::string missing = copy_of(kK3, "missing_weight.h5");
  {
    h5::File f(missing, h5::File::read_write);
    f.set_attribute("model_weights/dense_2", "weight_names",
                    std::vector<std::string>{"sequential/dense_2/kernel", "sequential/dense_2/bias_gone"});
    f.close();
  }
  e = error_of([&] { load_model(missing); });
  CHECK(contains(e, missing));
  CHECK(contains(e, "layer 'dense_2'"));
  CHECK(contains(e, "'sequential/dense_2/bias_gone' is missing"));

  std::string fewer = copy_of(kK3, "fewer_weights.h5");
  {
    h5::File f(fewer, h5::File::read_write);
    f.set_attribute("model_weights/dense_2", "weight_names",
                    std::vector<std::string>{"sequential/dense_2/kernel"});
    f.close();
  }
  CHECK(contains(error_of([&] { load_model(fewer); }), "layer 'dense_2' (Dense): the layer has 2 weights"));

  std::string absurd = copy_of(kK3, "absurd.h5");
  edit_config(absurd, [](json::object& c) { layer_config(c, "dense")["units"] = int64_t(1) << 40; });
  e = error_of([&] { load_model(absurd); });
  CHECK(contains(e, absurd));
  CHECK(contains(e, "'dense'"));
  CHECK(contains(e, "larger than the largest weight stored"));

  std::string negative = copy_of(kK3, "negative.h5");
  edit_config(negative, [](json::object& c) { layer_config(c, "dense")["units"] = -5; });
  e = error_of([&] { load_model(negative); });
  CHECK(contains(e, negative));
  CHECK(contains(e, "'units' must be a positive integer"));

  std::string shape_dims = copy_of(kK3, "absurd_input.h5");
  edit_config(shape_dims, [](json::object& c) {
    layers_of(c)[0].as_object().at("config").as_object()["batch_shape"] =
        json::parse("[null, 100000000000000]");
  });
  e = error_of([&] { load_model(shape_dims); });
  CHECK(contains(e, shape_dims));
  CHECK(contains(e, "'dense'"));

  std::string unknown = copy_of(kK3, "unknown_class.h5");
  edit_config(unknown, [](json::object& c) { layers_of(c)[2].as_object()["class_name"] = "QuantumDense"; });
  e = error_of([&] { load_model(unknown); });
  CHECK(contains(e, unknown));
  CHECK(contains(e, "unknown layer class 'QuantumDense'"));
  CHECK(contains(e, "Plugin folders searched"));
}

TEST_CASE("an unusable training config or optimizer state only loses the training state") {
  set_backend("reference");
  std::string path = copy_of(kK3, "odd_training.h5");
  {
    h5::File f(path, h5::File::read_write);
    f.set_attribute("/", "training_config",
                    R"({"loss": "hinge_of_doom", "optimizer_config": {"class_name": "Adam"}})");
    f.close();
  }
  Sequential m = load_model(path);
  CHECK(!m.compiled());
  CHECK(m.size() == 3);

  std::string renamed = copy_of(kK3, "odd_slots.h5");
  {
    h5::File f(renamed, h5::File::read_write);
    auto names = f.strings_attribute("optimizer_weights", "weight_names");
    names[2] = "adam/something_else";
    f.set_attribute("optimizer_weights", "weight_names", names);
    f.close();
  }
  Sequential n = load_model(renamed);
  REQUIRE(n.compiled());
  CHECK(n.optimizer_state().iterations == 0);  // a fresh state, as Keras does on a mismatch
}

// ------------------------------------------------------------------------------------------------
// lamina::h5

TEST_CASE("h5: named arrays of every type, attributes and row ranges") {
  std::string path = scratch("arrays.h5");
  {
    h5::File f(path, h5::File::create);
    std::vector<uint8_t> bytes(5 * 4 * 3);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i);
    f.write("images/x", bytes, {5, 4, 3});
    f.write("labels", std::vector<int64_t>{3, 1, 4, 1, 5}, {5});
    f.write("i32", std::vector<int32_t>{-7, 8}, {2});
    f.write("f64", std::vector<double>{0.125, -2.5}, {2});
    f.write("t", Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}));
    f.write("scalar", std::vector<float>{9.5f}, {});
    f.create_dataset("stream", h5::DType::float32, {4, 2});
    std::vector<float> rows{1, 2, 3, 4};
    f.write_rows("stream", 1, rows.data(), 2);
    f.set_attribute("images/x", "source", "synthetic");
    f.set_attribute("/", "names", std::vector<std::string>{"a", "bc"});
    f.set_attribute("/", "pi", 3.25);
    f.set_attribute("/", "count", int64_t(12));
    f.set_attribute("/", "sizes", std::vector<int64_t>{1, 2, 3});
    f.close();
  }
  h5::File f(path);
  Shape s;
  std::vector<uint8_t> bytes = f.read<uint8_t>("images/x", &s);
  CHECK(s == Shape{5, 4, 3});
  CHECK(bytes[59] == 59);
  CHECK(f.info("images/x").dtype == h5::DType::uint8);
  // a hyperslab: rows 2 and 3 only, converted to float
  std::vector<float> rows = f.read_rows<float>("images/x", 2, 4, &s);
  CHECK(s == Shape{2, 4, 3});
  CHECK(rows.front() == 24.0f);
  CHECK(rows.back() == 47.0f);
  CHECK(f.read<int64_t>("labels") == std::vector<int64_t>{3, 1, 4, 1, 5});
  CHECK(f.read<double>("labels")[4] == 5.0);
  CHECK(f.read<int32_t>("i32") == std::vector<int32_t>{-7, 8});
  CHECK(f.read<double>("f64") == std::vector<double>{0.125, -2.5});
  CHECK(f.read_tensor("t").shape() == Shape{3, 2});
  CHECK(f.read_tensor_rows("t", 1, 3).to_vector() == std::vector<float>{3, 4, 5, 6});
  CHECK(f.read<float>("scalar", &s) == std::vector<float>{9.5f});
  CHECK(s.empty());
  CHECK(f.read<float>("stream") == std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0});
  CHECK(f.string_attribute("images/x", "source") == "synthetic");
  CHECK(f.strings_attribute("/", "names") == std::vector<std::string>{"a", "bc"});
  CHECK(f.numbers_attribute("/", "pi") == std::vector<double>{3.25});
  CHECK(f.numbers_attribute("/", "count") == std::vector<double>{12});
  CHECK(f.numbers_attribute("/", "sizes").size() == 3);
  CHECK(f.children("/") ==
        std::vector<std::string>{"f64", "i32", "images", "labels", "scalar", "stream", "t"});
  CHECK(f.is_group("images"));
  CHECK(!f.exists("images/y/z"));
  CHECK(contains(error_of([&] { f.read<float>("nope"); }), path + ": there is no dataset 'nope'"));
  CHECK(contains(error_of([&] { f.read_rows<float>("labels", 3, 9); }), "rows [3, 9) do not exist"));
  CHECK(contains(error_of([&] { f.string_attribute("/", "pi"); }), "holds float64, not text"));
  CHECK(contains(error_of([&] { f.string_attribute("/", "nothing"); }), "has no attribute 'nothing'"));
}

// ------------------------------------------------------------------------------------------------
// the command line

TEST_CASE("lamina summary, evaluate and predict on a real Keras file") {
  int rc = 0;
  std::string out = run_cli("summary " + kTf214, &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "Total params: 93322 (364.54 KB)"));
  CHECK(contains(out, "conv2d_2 (Conv2D)"));

  out = run_cli("evaluate " + kK3 + " --data mnist:" + kData + "/mnist", &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "accuracy: 0.9714"));
  CHECK(contains(out, "loss: "));
  out = run_cli("evaluate " + kTf24 + " --data mnist:" + kData + "/mnist --limit 2000", &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "on 2000 samples"));

  std::string predictions = scratch("predictions.h5");
  out = run_cli("predict " + kK3 + " --input mnist:" + kData + "/mnist --limit 300 --output " + predictions,
                &rc);
  CHECK(rc == 0);
  h5::File f(predictions);
  Shape s;
  std::vector<float> p = f.read<float>("predictions", &s);
  CHECK(s == Shape{300, 10});
  set_backend("reference");
  Tensor x = (read_idx(kData + "/mnist/t10k-images-idx3-ubyte.gz").slice(0, 300) / 255.0f).reshape({-1, 784});
  CHECK(test::max_abs_diff(p, load_model(kK3).predict(x).to_vector()) < 1e-5f);

  // h5:FILE:X:Y data, with the labels one-hot
  std::string data = scratch("data.h5");
  {
    h5::File d(data, h5::File::create);
    d.write("x", x.to_vector(), {300, 784});
    d.write("y", to_categorical(read_idx(kData + "/mnist/t10k-labels-idx1-ubyte.gz").slice(0, 300), 10));
    d.close();
  }
  out = run_cli("evaluate " + kK3 + " --data h5:" + data + ":x:y --backend reference", &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "accuracy: "));
}

TEST_CASE("lamina evaluate uses the file's loss even when lamina lacks its optimizer") {
  int rc = 0;
  std::string base = run_cli("evaluate " + kTf24 + " --data mnist:" + kData + "/mnist --limit 500", &rc);
  REQUIRE(rc == 0);
  std::string path = copy_of(kTf24, "nadam.h5");
  {
    h5::File f(path, h5::File::read_write);
    json::value tc = json::parse(f.string_attribute("/", "training_config"));
    tc.as_object()["optimizer_config"].as_object()["class_name"] = "Nadam";
    f.set_attribute("/", "training_config", json::serialize(tc));
    f.close();
  }
  std::string out = run_cli("evaluate " + path + " --data mnist:" + kData + "/mnist --limit 500", &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "unknown optimizer class 'Nadam'"));
  auto line = [](const std::string& text, const std::string& key) {
    size_t at = text.find("\n" + key + ": ");
    return at == std::string::npos ? std::string("missing")
                                   : text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  };
  CHECK(line(out, "loss") == line(base, "loss"));  // from logits, sparse: not the default loss
  CHECK(line(out, "accuracy") == line(base, "accuracy"));
}

TEST_CASE("the lamina command exits non-zero with a message on a bad model file or data spec") {
  std::string truncated = scratch("cli_truncated.h5");
  {
    std::ifstream in(kTf24, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, 4096);
  }
  int rc = 0;
  for (const std::string& command :
       {"summary " + truncated, "evaluate " + truncated + " --data mnist:" + kData + "/mnist",
        "predict " + truncated + " --input mnist:x --output " + scratch("never.h5")}) {
    std::string out = run_cli(command, &rc);
    CHECK(rc != 0);
    CHECK(contains(out, "lamina: error: " + truncated));
  }
  std::string out = run_cli("evaluate " + kK3 + " --data imagenet:/data", &rc);
  CHECK(rc != 0);
  CHECK(contains(out, "unknown data spec 'imagenet:/data'"));
  CHECK(!fs::exists(scratch("never.h5")));
}

TEST_CASE("a lamina file writes its configs' numbers as Keras does (Python's json): 0.9, 1e-07, 0.0") {
  set_backend("reference");
  Sequential m;
  m.add(layers::Dense(3, {.input_dim = 4}));
  m.add(layers::Dropout(0.0));
  m.add(layers::Dense(2, {.activation = "softmax"}));
  m.compile("categorical_crossentropy", OptimizerSpec("Adam", {{"beta_1", 0.9}, {"epsilon", 1e-7}}));
  const std::string path = scratch("numbers.h5");
  m.save(path);
  h5::File f(path);
  const std::string model_config = f.string_attribute("/", "model_config");
  const std::string training_config = f.string_attribute("/", "training_config");
  CHECK(contains(model_config, "\"rate\":0.0"));
  CHECK(contains(training_config, "\"beta_1\":0.9"));
  CHECK(contains(training_config, "\"epsilon\":1e-07"));
  CHECK(contains(training_config, "\"learning_rate\":0.001"));
  for (const std::string& text : {model_config, training_config, m.to_json()}) {
    CAPTURE(text);
    // Boost.JSON's own spelling of doubles (9E-1, 0E0) appears nowhere
    CHECK_FALSE(std::regex_search(text, std::regex("[0-9]E[-+]?[0-9]")));
  }
  // and the numbers read back as the same doubles
  CHECK(json::parse(training_config).at("optimizer_config").at("config").at("epsilon").as_double() == 1e-7);
}
