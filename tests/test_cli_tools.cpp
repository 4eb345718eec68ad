// Day-to-day use: callbacks, history files, the progress display, and the `lamina` command's
// subcommands (summary, visualize, plot, train with callbacks and --history) on real files.
#include "support.hpp"

#include <lamina/h5.hpp>

#include <png.h>
#include <boost/json.hpp>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using namespace lamina;
using lamina::test::read_text;
using lamina::test::run_cli;
using lamina::test::scratch;

namespace {

const std::string kData = std::string(LAMINA_SOURCE_DIR) + "/tests/data";
const std::string kTf24 = kData + "/keras_models/tfk2.4.0_mlp_dropout_adam_dig94.h5";
const std::string kTf214 = kData + "/keras_models/tfk2.14.0_cnn_adam_01110001-ml-mnist.h5";
const std::string kK3 = kData + "/keras_models/k3.3.3_mlp_adam_4bumuhammad.h5";
const std::string kMnist = kData + "/mnist";

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("output was: " << s);
  return false;
}

// A PNG read back through libpng: size and RGB pixels.
struct Picture {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::set<uint32_t> colours() const {
    std::set<uint32_t> out;
    for (size_t i = 0; i + 2 < rgb.size(); i += 3)
      out.insert(uint32_t(rgb[i]) << 16 | uint32_t(rgb[i + 1]) << 8 | rgb[i + 2]);
    return out;
  }
};

Picture read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE_MESSAGE(png_image_begin_read_from_file(&image, path.c_str()),
                  "not a PNG: " << path << ": " << image.message);
  image.format = PNG_FORMAT_RGB;
  Picture p;
  p.width = int(image.width);
  p.height = int(image.height);
  p.rgb.resize(PNG_IMAGE_SIZE(image));
  REQUIRE_MESSAGE(png_image_finish_read(&image, nullptr, p.rgb.data(), 0, nullptr), image.message);
  return p;
}

// The first `n` MNIST test images, scaled to [0, 1] and flattened, with one-hot labels.
std::pair<Tensor, Tensor> mnist(int64_t begin, int64_t end) {
  Tensor x = read_idx(kMnist + "/t10k-images-idx3-ubyte.gz").slice(begin, end).reshape({-1, 784}) / 255.0f;
  Tensor y = to_categorical(read_idx(kMnist + "/t10k-labels-idx1-ubyte.gz").slice(begin, end), 10);
  return {x, y};
}

Sequential small_mlp(const OptimizerSpec& optimizer = OptimizerSpec("SGD", {{"learning_rate", 0.1}})) {
  Sequential m("mlp");
  m.add(layers::Dense(32, {.input_shape = {784}, .activation = "relu"}));
  m.add(layers::Dense(10, {.activation = "softmax"}));
  m.compile({.loss = "categorical_crossentropy", .optimizer = optimizer, .metrics = {"accuracy"}});
  return m;
}

std::vector<std::vector<float>> weights_of(const Model& m) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < m.size(); ++i)
    for (const Tensor& w : m.layer(i).get_weights()) out.push_back(w.to_vector());
  return out;
}

// Records what each epoch ended with: the logs, the learning rate and the weights.
struct Recorder : Callback {
  std::vector<std::map<std::string, double>> logs;
  std::vector<double> learning_rates;
  std::vector<std::vector<std::vector<float>>> weights;
  void on_epoch_end(Model& m, int, const std::map<std::string, double>& l) override {
    logs.push_back(l);
    learning_rates.push_back(m.learning_rate());
    weights.push_back(weights_of(m));
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// the progress display

TEST_CASE("progress bar: counts, bar, ETA, throughput and running metrics as Keras draws them") {
  CHECK(progress::format_eta(7.4) == "7s");
  CHECK(progress::format_eta(62) == "1:02");
  CHECK(progress::format_eta(3723) == "1:02:03");
  // 1920 of 60000 samples after 2 s: 960 samples/s, 60.5 s to go.
  CHECK(progress::bar_line(1920, 60000, 2.0, " - loss: 0.5012") ==
        " 1920/60000 [>.............................] - ETA: 1:01 - 960 samples/s - loss: 0.5012");
  CHECK(progress::bar_line(30000, 60000, 10.0, "") ==
        "30000/60000 [==============>...............] - ETA: 10s - 3000 samples/s");
  CHECK(progress::epoch_line(60000, 31.24, 30.0, " - loss: 0.1000", true) ==
        "60000/60000 [==============================] - 31.2s - 2000 samples/s - loss: 0.1000");
  // Without a terminal: one line per epoch, no bar.
  CHECK(progress::epoch_line(60000, 31.24, 30.0, " - loss: 0.1000", false) ==
        "60000/60000 - 31.2s - 2000 samples/s - loss: 0.1000");
}

// ------------------------------------------------------------------------------------------------
// callbacks

TEST_CASE("EarlyStopping stops when the monitored loss stops improving and restores the best weights") {
  set_random_seed(3);
  auto [x, y] = mnist(0, 600);
  Sequential m = small_mlp();
  // min_delta 10: no epoch after the first counts as an improvement, so with patience 2 training
  // ends after epoch 3 (index 2), and the weights go back to those of epoch 1 (index 0).
  auto stop = std::make_shared<EarlyStopping>(EarlyStopping::Options{
      .monitor = "loss", .min_delta = 10, .patience = 2, .restore_best_weights = true});
  auto rec = std::make_shared<Recorder>();
  History h = m.fit(x, y, {.epochs = 20, .batch_size = 32, .verbose = 0, .callbacks = {rec, stop}});
  CHECK(h.epoch.size() == 3);
  CHECK(stop->stopped_epoch() == 2);
  CHECK(stop->best_epoch() == 0);
  REQUIRE(rec->weights.size() == 3);
  CHECK(weights_of(m) == rec->weights[0]);
  CHECK(weights_of(m) != rec->weights[2]);

  // Without the impossible min_delta, a steadily falling training loss never stops it.
  Sequential n = small_mlp();
  auto patient = std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "loss", .patience = 1});
  History g = n.fit(x, y, {.epochs = 4, .batch_size = 32, .verbose = 0, .callbacks = {patient}});
  CHECK(g.epoch.size() == 4);
  CHECK(patient->stopped_epoch() == -1);
}

TEST_CASE("ModelCheckpoint with save_best_only writes the weights of the best epoch, atomically") {
  set_random_seed(5);
  auto [x, y] = mnist(0, 800);
  auto [vx, vy] = mnist(800, 1000);
  // A large learning rate makes the validation loss go up and down.
  Sequential m = small_mlp(OptimizerSpec("SGD", {{"learning_rate", 0.9}}));
  std::string path = scratch("best.h5");
  auto checkpoint = std::make_shared<ModelCheckpoint>(path, ModelCheckpoint::Options{.save_best_only = true});
  auto rec = std::make_shared<Recorder>();
  m.fit(x, y,
        {.epochs = 6,
         .batch_size = 16,
         .verbose = 0,
         .validation_data = std::make_pair(vx, vy),
         .callbacks = {checkpoint, rec}});
  REQUIRE(rec->logs.size() == 6);
  size_t best = 0, improvements = 0;
  double best_value = INFINITY;
  for (size_t e = 0; e < rec->logs.size(); ++e)
    if (rec->logs[e].at("val_loss") < best_value)
      best_value = rec->logs[e].at("val_loss"), best = e, ++improvements;
  MESSAGE("best epoch " << best + 1 << " of 6, " << improvements << " improvements");
  CHECK(checkpoint->best_epoch() == int(best));
  CHECK(checkpoint->best() == best_value);
  CHECK(checkpoint->saved().size() == improvements);
  Sequential saved = load_model(path);
  CHECK(weights_of(saved) == rec->weights[best]);
  CHECK(saved.evaluate(vx, vy).at("loss") == doctest::Approx(best_value).epsilon(1e-5));
  CHECK(!fs::exists(path + ".tmp"));

  // Every epoch, to a name with Keras' placeholders.
  auto every = std::make_shared<ModelCheckpoint>(scratch("ckpt-{epoch:02d}-{val_accuracy:.3f}.h5"),
                                                 ModelCheckpoint::Options{.save_weights_only = true});
  auto rec2 = std::make_shared<Recorder>();
  m.fit(x, y,
        {.epochs = 2, .verbose = 0, .validation_data = std::make_pair(vx, vy), .callbacks = {every, rec2}});
  REQUIRE(every->saved().size() == 2);
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-02-%.3f.h5", rec2->logs[1].at("val_accuracy"));
  CHECK(fs::path(every->saved()[1]).filename() == name);
  CHECK(fs::exists(every->saved()[0]));
  Sequential again = small_mlp();
  again.load_weights(every->saved()[1]);
  CHECK(weights_of(again) == rec2->weights[1]);
}

TEST_CASE("CSVLogger, History files: what fit returned, epoch by epoch, readable back") {
  set_random_seed(7);
  auto [x, y] = mnist(0, 400);
  auto [vx, vy] = mnist(400, 500);
  Sequential m = small_mlp();
  std::string csv = scratch("log.csv");
  History h = m.fit(x, y,
                    {.epochs = 3,
                     .verbose = 0,
                     .validation_data = std::make_pair(vx, vy),
                     .callbacks = {std::make_shared<CSVLogger>(csv)}});
  std::string text = read_text(csv);
  CHECK(text.rfind("epoch,accuracy,loss,val_accuracy,val_loss\n0,", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);
  for (const std::string& path : {csv, scratch("history.csv"), scratch("history.json")}) {
    if (path != csv) write_history(h, path);
    CAPTURE(path);
    History back = read_history(path);
    CHECK(back.epoch == std::vector<int>{0, 1, 2});
    REQUIRE(back.history.size() == h.history.size());
    for (auto& [key, values] : h.history) {
      REQUIRE(back.history[key].size() == values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        if (path.find(".csv") != std::string::npos)
          CHECK(back.history[key][i] == values[i]);  // the shortest round-tripping text: exact
        else
          CHECK(back.history[key][i] == doctest::Approx(values[i]).epsilon(1e-14));
      }
    }
  }
  CHECK(read_text(scratch("history.json")).rfind("{\"epoch\": [0, 1, 2], \"accuracy\": [", 0) == 0);
  CHECK(contains(error_of([&] { read_history(scratch("missing.csv")); }), "does not exist"));
  std::ofstream(scratch("bad.csv")) << "epoch,loss\n0,0.5\n1,abc\n";
  CHECK(contains(error_of([&] { read_history(scratch("bad.csv")); }),
                 "bad.csv:3, column 'loss': 'abc' is not a number"));
}

TEST_CASE("TerminateOnNaN ends training at a NaN loss instead of the error fit raises without it") {
  set_random_seed(9);
  auto [x, y] = mnist(0, 256);
  std::vector<float> v = y.to_vector();
  v[100 * 10 + 3] = NAN;  // sample 100's label: the batch that holds it has a NaN loss
  Tensor bad = Tensor::from_vector(v, y.shape());
  Sequential m = small_mlp();
  const Tensor& inputs = x;  // a lambda may not capture a structured binding in clang 14
  CHECK(contains(error_of([&] { m.fit(inputs, bad, {.epochs = 2, .verbose = 0, .shuffle = false}); }),
                 "loss became NaN"));
  auto nan = std::make_shared<TerminateOnNaN>();
  Sequential n = small_mlp();
  History h =
      n.fit(x, bad, {.epochs = 3, .batch_size = 32, .verbose = 0, .shuffle = false, .callbacks = {nan}});
  CHECK(nan->terminated());
  REQUIRE(h.epoch.size() == 1);
  CHECK(std::isnan(h.history.at("loss")[0]));
  for (auto& w : weights_of(n))
    for (float f : w) REQUIRE(std::isfinite(f));  // the NaN batch updated nothing
}

TEST_CASE("LearningRateScheduler and ReduceLROnPlateau set the optimizer's learning rate") {
  set_random_seed(11);
  auto [x, y] = mnist(0, 200);
  Sequential m = small_mlp();
  auto schedule = std::make_shared<LearningRateScheduler>(
      [](int epoch, double lr) { return epoch == 0 ? 0.05 : lr * 0.5; });
  auto rec = std::make_shared<Recorder>();
  m.fit(x, y, {.epochs = 3, .verbose = 0, .callbacks = {schedule, rec}});
  REQUIRE(rec->learning_rates.size() == 3);
  CHECK(rec->learning_rates[0] == doctest::Approx(0.05));
  CHECK(rec->learning_rates[1] == doctest::Approx(0.025));
  CHECK(rec->learning_rates[2] == doctest::Approx(0.0125));

  // min_delta 10 on the loss: no epoch improves after the first, so with patience 1 the rate
  // halves at the end of every later epoch, down to min_lr.
  Sequential n = small_mlp();
  auto plateau = std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{
      .monitor = "loss", .factor = 0.5, .patience = 1, .min_delta = 10, .min_lr = 0.02});
  auto rec2 = std::make_shared<Recorder>();
  n.fit(x, y, {.epochs = 5, .verbose = 0, .callbacks = {plateau, rec2}});
  std::vector<double> expected{0.1, 0.05, 0.025, 0.02, 0.02};
  REQUIRE(rec2->learning_rates.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) CHECK(rec2->learning_rates[i] == doctest::Approx(expected[i]));
}

TEST_CASE("callbacks from Keras-like config, and errors that name the key") {
  namespace json = boost::json;
  auto make = [](const char* text) { return callback_from_config(json::parse(text), "fit callbacks[0]"); };
  CHECK(dynamic_cast<EarlyStopping*>(make(R"({"class_name": "EarlyStopping", "config": {"patience": 2,
       "monitor": "val_accuracy", "restore_best_weights": true}})")
                                         .get()));
  CHECK(dynamic_cast<ModelCheckpoint*>(
      make(R"({"class_name": "ModelCheckpoint", "config": {"filepath": "b.h5", "save_best_only": true}})")
          .get()));
  CHECK(dynamic_cast<CSVLogger*>(
      make(R"({"class_name": "CSVLogger", "config": {"filename": "log.csv"}})").get()));
  CHECK(dynamic_cast<TerminateOnNaN*>(make(R"({"class_name": "TerminateOnNaN"})").get()));
  CHECK(dynamic_cast<ReduceLROnPlateau*>(
      make(R"({"class_name": "ReduceLROnPlateau", "config": {"factor": 0.2}})").get()));
  CHECK(dynamic_cast<LearningRateScheduler*>(
      make(R"({"class_name": "LearningRateScheduler", "config": {"schedule": [0.1, 0.01]}})").get()));
  CHECK(contains(error_of([&] { make(R"({"class_name": "EarlyStoping"})"); }),
                 "unknown callback 'EarlyStoping'"));
  CHECK(contains(error_of([&] { make(R"({"class_name": "EarlyStopping", "config": {"patiense": 2}})"); }),
                 "fit callbacks[0] EarlyStopping: unknown key 'patiense'"));
  CHECK(contains(error_of([&] { make(R"({"class_name": "EarlyStopping", "config": {"patience": "2"}})"); }),
                 "'patience' must be a number"));
  CHECK(contains(error_of([&] { make(R"({"class_name": "ModelCheckpoint", "config": {}})"); }),
                 "'filepath' is required"));
  CHECK(contains(error_of([&] { make(R"({"class_name": "EarlyStopping", "config": {"mode": "best"}})"); }),
                 "mode 'best' is not one of auto, min, max"));
}

// ------------------------------------------------------------------------------------------------
// the command line

TEST_CASE("lamina --help, --version and every subcommand's --help") {
  int rc = 0;
  CHECK(contains(run_cli("--version", &rc), "lamina 0.1.0"));
  CHECK(rc == 0);
  std::string top = run_cli("--help", &rc);
  CHECK(rc == 0);
  for (const char* sub : {"train", "evaluate", "predict", "summary", "plugins", "visualize", "plot"}) {
    CHECK(contains(top, std::string("  ") + sub));
    std::string help = run_cli(std::string(sub) + " --help", &rc);
    CHECK_MESSAGE(rc == 0, sub);
    CHECK(contains(help, "Usage:"));
  }
  CHECK(contains(run_cli("visualize filters --help", &rc), "--layer"));
  CHECK(contains(run_cli("visualize activations --help", &rc), "--index"));
  CHECK(contains(run_cli("train --help", &rc), "--history"));
  std::string wrong = run_cli("visualize", &rc);
  CHECK(rc != 0);
  CHECK(contains(wrong, "subcommand"));
}

TEST_CASE("lamina summary: Keras' table, and its parameter counts are the weights in the file") {
  for (const std::string& file : {kTf24, kTf214, kK3}) {
    CAPTURE(file);
    int rc = 0;
    std::string out = run_cli("summary " + file, &rc);
    REQUIRE(rc == 0);
    // Parameters per layer as the file stores them: model_weights/<layer>/.../<weight>.
    h5::File f(file);
    std::map<std::string, int64_t> stored;
    int64_t stored_total = 0;
    std::function<void(const std::string&, const std::string&)> walk = [&](const std::string& group,
                                                                           const std::string& layer) {
      for (const std::string& child : f.children(group)) {
        std::string path = group + "/" + child;
        if (f.is_group(path)) {
          walk(path, layer.empty() ? child : layer);
        } else {
          int64_t n = shape_size(f.info(path).shape);
          stored[layer] += n;
          stored_total += n;
        }
      }
    };
    walk("/model_weights", "");
    // Rows: " name (Type)   (None, ...)   count" (a name longer than 26 characters wraps).
    std::regex row(R"(^ (\S+) \(\S+\s+\(None[^)]*\)\s+(\d+)\s*$)");
    std::istringstream lines(out);
    std::string line;
    int64_t listed = 0;
    int rows = 0;
    while (std::getline(lines, line)) {
      std::smatch m;
      if (std::regex_match(line, m, row)) {
        ++rows;
        CHECK(line.size() == 65);
        int64_t count = std::stoll(m[2]);
        listed += count;
        CHECK_MESSAGE(count == stored[m[1]], "layer " << m[1]);
      }
    }
    CHECK(rows >= 3);
    CHECK(listed == stored_total);
    char total[96];
    std::snprintf(total, sizeof total, "Total params: %lld (", static_cast<long long>(stored_total));
    CHECK(contains(out, total));
    CHECK(contains(out, "Non-trainable params: 0 (0.00 Byte)"));
    CHECK(contains(out, " Layer (type)                Output Shape              Param #   \n"));
  }
  // The CNN: tf.keras 2.14 wraps the pooling layer's name exactly so.
  int rc = 0;
  std::string out = run_cli("summary " + kTf214, &rc);
  CHECK(contains(out, "\n max_pooling2d (MaxPooling2  (None, 13, 13, 32)        0         \n D)"));
  CHECK(contains(out, "Total params: 93322 (364.54 KB)\nTrainable params: 93322 (364.54 KB)\n"));
}

TEST_CASE("lamina visualize filters and activations: PNG pictures of the expected size") {
  int rc = 0;
  // The CNN's first Conv2D: 32 kernels of 3x3x1, a 6x6 grid of 48-pixel tiles (16x enlarged).
  std::string png = scratch("filters.png");
  std::string out = run_cli("visualize filters " + kTf214 + " --layer 0 -o " + png, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  Picture p = read_png(png);
  CHECK(p.width == 6 * 48 + 7 * 2);
  CHECK(p.height == 6 * 48 + 7 * 2);
  CHECK(p.colours().size() > 20);  // normalised grey levels, not a flat picture
  CHECK(p.colours().count(0x000000));
  CHECK(p.colours().count(0xFFFFFF));  // each kernel spans black to white

  // The second Conv2D (32 filters of 3x3x32): a row of 32 input-channel tiles per filter.
  out = run_cli("visualize filters " + kTf214 + " --layer conv2d_1 --scale 4 -o " + png, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  p = read_png(png);
  CHECK(p.width == 32 * 12 + 33 * 2);
  CHECK(p.height == 64 * 12 + 65 * 2);

  // A Dense layer after Flatten(28x28): each unit's 784 weights as a 28x28 picture.
  out = run_cli("visualize filters " + kTf24 + " --layer 1 --columns 16 -o " + png, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  p = read_png(png);
  CHECK(p.width == 16 * 56 + 17 * 2);
  CHECK(p.height == 8 * 56 + 9 * 2);

  // The second convolution's activations for test image 0 (a 7): 64 maps of 11x11, 5x enlarged.
  std::string act = scratch("act.png");
  out = run_cli(
      "visualize activations " + kTf214 + " --layer 2 --input mnist:" + kMnist + " --index 0 -o " + act, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(contains(out, "label 7"));
  p = read_png(act);
  CHECK(p.width == 8 * 55 + 9 * 2);
  CHECK(p.height == 8 * 55 + 9 * 2);
  CHECK(p.colours().size() > 20);
  // Another image gives other maps.
  std::string act2 = scratch("act2.png");
  run_cli("visualize activations " + kTf214 + " --layer 2 --input mnist:" + kMnist + " --index 1 -o " + act2,
          &rc);
  CHECK(read_png(act2).rgb != p.rgb);

  // A Dense layer's 64 outputs: 4 rows of 16 cells, 16 pixels each.
  out =
      run_cli("visualize activations " + kK3 + " --layer dense --input mnist:" + kMnist + " -o " + act, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  p = read_png(act);
  CHECK(p.width == 16 * 16 + 2 * 2);
  CHECK(p.height == 4 * 16 + 2 * 2);
  CHECK(p.colours().size() > 5);

  // Errors say what is wrong and what exists.
  out = run_cli("visualize filters " + kTf214 + " --layer 1 -o " + png, &rc);
  CHECK(rc == 1);
  CHECK(contains(out, "has no weights to draw"));
  out = run_cli("visualize filters " + kTf214 + " --layer nope -o " + png, &rc);
  CHECK(contains(out, "there is no layer 'nope'; the layers are: 0 conv2d (Conv2D)"));
  out = run_cli(
      "visualize activations " + kTf214 + " --layer 2 --input mnist:" + kMnist + " --index 10000 -o " + act,
      &rc);
  CHECK(contains(out, "--index 10000 is out of range"));
}

TEST_CASE(
    "lamina visualize reconstructions: inputs above an autoencoder's outputs, on the input's grey scale") {
  int rc = 0;
  // The simplest model whose output has its input's shape: the identity. Its reconstructions are the
  // inputs, so the two rows of the picture must be the same pixels.
  Sequential identity("identity");
  identity.add(layers::Activation("linear", {.input_shape = {28, 28, 1}}));
  const std::string model = scratch("identity.h5"), png = scratch("reconstructions.png");
  identity.save(model);
  std::string out = run_cli(
      "visualize reconstructions " + model + " --input mnist:" + kMnist + " --index 3 --count 4 -o " + png,
      &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(contains(out, "samples 3 to 6 of mnist:"));
  Picture p = read_png(png);
  const int tile = 56, gap = 2;  // 28x28 samples, twice enlarged
  REQUIRE(p.width == 4 * tile + 5 * gap);
  REQUIRE(p.height == 2 * tile + 3 * gap);
  const size_t row_bytes = size_t(p.width) * 3;
  for (int y = gap; y < gap + tile; ++y)
    CHECK(std::equal(p.rgb.begin() + ptrdiff_t(size_t(y) * row_bytes),
                     p.rgb.begin() + ptrdiff_t(size_t(y + 1) * row_bytes),
                     p.rgb.begin() + ptrdiff_t(size_t(y + tile + gap) * row_bytes)));
  CHECK(p.colours().size() > 20);

  // A model that halves every value draws its reconstructions darker, not renormalised.
  Sequential half("half");
  half.add(layers::Dense(1, {.input_shape = {28, 28, 1}, .use_bias = false}));  // on the channel axis
  half.layer(0).set_weights({Tensor::full({1, 1}, 0.5f)});
  half.save(model);
  out = run_cli("visualize reconstructions " + model + " --input mnist:" + kMnist + " --count 1 -o " + png,
                &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  Picture dim = read_png(png);
  const size_t second_row = size_t(gap + tile + gap) * size_t(dim.width) * 3,
               second_row_end = second_row + size_t(tile) * size_t(dim.width) * 3;
  CHECK(std::count(dim.rgb.begin(), dim.rgb.begin() + ptrdiff_t(second_row), uint8_t(255)) >
        0);  // the input's white
  CHECK(std::count(dim.rgb.begin() + ptrdiff_t(second_row), dim.rgb.begin() + ptrdiff_t(second_row_end),
                   uint8_t(255)) == 0);

  // A classifier is not an autoencoder.
  out = run_cli("visualize reconstructions " + kTf214 + " --input mnist:" + kMnist + " -o " + png, &rc);
  CHECK(rc == 1);
  CHECK(contains(out, "needs a model that maps each sample to one of its own shape (an autoencoder)"));
}

TEST_CASE("lamina train from Keras' to_json(), with callbacks, --history and lamina plot") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  // The model exactly as Keras 3 wrote it into the file (model.to_json()'s text).
  std::string model_json = h5::File(kK3).string_attribute("/", "model_config");
  std::ofstream(scratch("model.json")) << model_json;
  std::string best = scratch("best.h5"), log = scratch("log.csv"), history = scratch("history.csv");
  boost::json::object config{
      {"model", "model.json"},
      {"compile", {{"loss", "categorical_crossentropy"}, {"optimizer", "adam"}, {"metrics", {"accuracy"}}}},
      {"fit",
       {{"epochs", 30},
        {"batch_size", 32},
        {"validation_split", 0.25},
        {"callbacks",
         {{{"class_name", "EarlyStopping"},
           {"config", {{"monitor", "loss"}, {"min_delta", 10}, {"patience", 2}}}},
          {{"class_name", "ModelCheckpoint"}, {"config", {{"filepath", best}, {"save_best_only", true}}}},
          {{"class_name", "CSVLogger"}, {"config", {{"filename", log}}}}}}}},
      {"data", {{"dataset", "fashion_mnist"}}}};
  config["fit"].as_object()["validation"] = "none";  // validate on the last quarter instead
  std::ofstream(scratch("train.json")) << boost::json::serialize(config);
  int rc = 0;
  std::string out =
      run_cli("train " + scratch("train.json") + " --limit 800 --verbose 1 --history " + history, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  // Not a terminal: one line per epoch, no bar, no carriage returns; EarlyStopping ended it at 3.
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find("[==") == std::string::npos);
  CHECK(contains(out, "Epoch 3/30\n"));
  CHECK(out.find("Epoch 4/30") == std::string::npos);
  std::regex epoch_line(
      R"(\n600/600 - \d+\.\ds - \d+ samples/s - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}\n)");
  CHECK(std::distance(std::sregex_iterator(out.begin(), out.end(), epoch_line), std::sregex_iterator()) == 3);
  History h = read_history(history);
  CHECK(h.epoch == std::vector<int>{0, 1, 2});
  CHECK(read_history(log).history == h.history);
  CHECK(fs::exists(best));
  const auto& val = h.history.at("val_loss");
  CHECK(load_model(best).layer(0).name() == "dense");

  // The curves: a loss and an accuracy panel, training in blue and validation in orange.
  std::string curves = scratch("curves.png");
  out = run_cli("plot " + history + " -o " + curves, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(contains(out, "loss, accuracy over 3 epochs"));
  Picture p = read_png(curves);
  CHECK(p.width == 2 * 560);
  CHECK(p.height == 420);
  CHECK(p.colours().count(0x1F77B4));  // matplotlib's blue
  CHECK(p.colours().count(0xFF7F0E));  // and orange
  CHECK(p.colours().count(0x000000));  // titles and legend text
  CHECK(val.size() == 3);

  // --verbose 2 prints the same one line per epoch; --verbose 0 nothing per epoch; bad callbacks
  // are errors naming the place.
  out = run_cli("train " + scratch("train.json") + " --limit 200 --epochs 1 --verbose 2", &rc);
  CHECK(rc == 0);
  CHECK(std::regex_search(out, std::regex(R"(\nEpoch 1/1\n150/150 - \d+\.\ds - \d+ samples/s - loss: )")));
  CHECK(out.find('\r') == std::string::npos);
  out = run_cli("train " + scratch("train.json") + " --limit 200 --epochs 1 --verbose 0", &rc);
  CHECK(rc == 0);
  CHECK(out.find("Epoch") == std::string::npos);
  config["fit"].as_object()["callbacks"] =
      boost::json::array{{{"class_name", "EarlyStopping"}, {"config", {{"patiense", 1}}}}};
  std::ofstream(scratch("bad.json")) << boost::json::serialize(config);
  out = run_cli("train " + scratch("bad.json") + " --limit 200", &rc);
  CHECK(rc == 1);
  CHECK(contains(out, "bad.json [fit] callbacks[0] EarlyStopping: unknown key 'patiense'"));
}

TEST_CASE("lamina train, summary, evaluate, predict and visualize take a functional model") {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  const std::string config = std::string(LAMINA_SOURCE_DIR) + "/examples/residual_cnn.json";
  const std::string model = scratch("residual.h5");
  int rc = 0;
  std::string out = run_cli("train " + config + " --epochs 1 --limit 256 --verbose 2 --output " + model, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(contains(out, "Connected to"));  // the graph's summary before training
  out = run_cli("summary " + model, &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "['activation[0][0]',"));  // the first block's Add reads the skip and the branch
  CHECK(contains(out, "Compiled: loss categorical_crossentropy, optimizer Adam"));
  out = run_cli("evaluate " + model + " --data fashion_mnist --limit 256", &rc);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(contains(out, "accuracy:"));
  out = run_cli("predict " + model + " --input fashion_mnist --limit 64 --output " + scratch("pred.h5"), &rc);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(h5::File(scratch("pred.h5")).info("predictions").shape == Shape{64, 10});
  out = run_cli("visualize activations " + model + " --layer add --input fashion_mnist --index 0 -o " +
                    scratch("act.png"),
                &rc);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(contains(out, "'add' (Add)"));
}

TEST_CASE(
    "lamina train: relative plugin_paths are folders beside the config file, as \"model\": \"file\" is") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  // a project folder holding the config, the model and a plugin folder; the CLI runs elsewhere
  const fs::path project = scratch("relative_plugins"), plugins = project / "my_plugins";
  fs::create_directories(plugins);
  for (const char* f : {"fixture_lion.so", "fixture_lion.json"})
    fs::copy_file(fs::path(LAMINA_FIXTURE_DIR) / "lion" / f, plugins / f,
                  fs::copy_options::overwrite_existing);
  std::ofstream(project / "model.json") << h5::File(kK3).string_attribute("/", "model_config");
  boost::json::object config{{"model", "model.json"},
                             {"plugin_paths", boost::json::array{"my_plugins"}},
                             {"fit", {{"epochs", 1}}},
                             {"data", {{"dataset", "fashion_mnist"}}}};
  boost::json::object compile{{"loss", "categorical_crossentropy"}};
  compile["optimizer"] = boost::json::object{{"class_name", "Lion"}, {"config", {{"learning_rate", 1e-4}}}};
  config["compile"] = compile;
  std::ofstream(project / "train.json") << boost::json::serialize(config);
  int rc = 0;
  std::string out =
      run_cli("train " + (project / "train.json").string() + " --limit 64 --epochs 1 --verbose 0", &rc);
  CHECK_MESSAGE(rc == 0, out);
  // a plugin_paths entry that is not a folder name is an error naming the file
  config["plugin_paths"] = boost::json::array{1};
  std::ofstream(project / "bad.json") << boost::json::serialize(config);
  out = run_cli("train " + (project / "bad.json").string() + " --limit 64 --epochs 1", &rc);
  CHECK(rc == 1);
  CHECK(contains(out, "bad.json: 'plugin_paths' must hold folder names, got 1"));
}

TEST_CASE("lamina plugins: a plugin found without a manifest shows the classes it registered") {
  const fs::path folder = scratch("no_manifest_plugins");
  fs::create_directories(folder);
  fs::copy_file(fs::path(LAMINA_FIXTURE_DIR) / "lion" / "fixture_lion.so", folder / "fixture_lion.so",
                fs::copy_options::overwrite_existing);
  ::setenv("LAMINA_PLUGIN_PATH", folder.c_str(), 1);
  int rc = 0;
  const std::string out = run_cli("plugins", &rc);
  ::unsetenv("LAMINA_PLUGIN_PATH");
  CHECK(rc == 0);
  std::smatch line;
  REQUIRE_MESSAGE(
      std::regex_search(out, line, std::regex("\\nlion +optimizer +1\\.0\\.0 +1\\.\\d+ +yes +([^\\n]*)\\n")),
      out);
  CHECK(line[1].str() == "Lion");
}
