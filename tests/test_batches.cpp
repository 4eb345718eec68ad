// Training from data read batch by batch: H5Batches streams datasets of an HDF5 file (the seed's
// "data can be accessed from h5 directly"), so fit() holds one batch in memory, not the data set.
#include "support.hpp"

#include <lamina/batches.hpp>
#include <lamina/h5.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <unistd.h>

using namespace lamina;
using lamina::test::scratch;
using namespace lamina::layers;
using lamina::test::error_of;

namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  MESSAGE("message was: " << text);
  return false;
}

// The first `n` real MNIST test images (uint8 pixels, N x 28 x 28) and labels, written to an .h5
// file as datasets "x" and "y" the way h5py users keep them; returns the path.
struct Digits {
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  int64_t n = 0;
};
Digits mnist_digits(int64_t n) {
  const std::string dir = std::string(LAMINA_SOURCE_DIR) + "/tests/data/mnist/";
  Tensor x = read_idx(dir + "t10k-images-idx3-ubyte.gz"), y = read_idx(dir + "t10k-labels-idx1-ubyte.gz");
  Digits d;
  d.n = n;
  for (float v : x.slice(0, n).to_vector()) d.pixels.push_back(uint8_t(v));
  for (float v : y.slice(0, n).to_vector()) d.labels.push_back(uint8_t(v));
  return d;
}
std::string write_digits(const Digits& d, const std::string& name) {
  std::string path = scratch(name);
  h5::File f(path, h5::File::create);
  f.write("x", d.pixels, {d.n, 28, 28});
  f.write("y", d.labels, {d.n});
  f.close();
  return path;
}
// The same digits in memory as a program would prepare them: x / 255 shaped (N, 28, 28, 1), one-hot y.
std::pair<Tensor, Tensor> digits_in_memory(const Digits& d) {
  std::vector<float> x(d.pixels.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(d.pixels[i]) / 255.0f;
  std::vector<float> y(d.labels.begin(), d.labels.end());
  return {Tensor::from_vector(x, {d.n, 28, 28, 1}), to_categorical(Tensor::from_vector(y, {d.n}), 10)};
}

const H5BatchesOptions kDigits{
    .x = "x", .y = "y", .batch_size = 32, .scale = 255, .num_classes = 10, .sample_shape = {28, 28, 1}};

}  // namespace

TEST_CASE("fit on an H5Batches source trains exactly as fit on the same data in memory") {
  set_backend("reference");
  Digits digits = mnist_digits(200);
  std::string path = write_digits(digits, "digits.h5");
  auto [x, y] = digits_in_memory(digits);

  set_random_seed(5);
  Sequential in_memory = test::small_digit_cnn();
  History a = in_memory.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0, .shuffle = false});

  set_random_seed(5);
  Sequential streamed = test::small_digit_cnn();
  H5Batches source(path, kDigits);
  History b = streamed.fit(source, {.epochs = 2, .verbose = 0, .shuffle = false});

  CHECK(test::weights_of(streamed) == test::weights_of(in_memory));
  CHECK(b.history["loss"] == a.history["loss"]);
  CHECK(b.history["accuracy"] == a.history["accuracy"]);
  // One pass over the file per epoch, one batch at a time.
  CHECK(source.rows_read() == 2 * 200);

  H5Batches test_rows(path, kDigits);
  auto streamed_eval = streamed.evaluate(test_rows);
  auto memory_eval = streamed.evaluate(x, y, 32);
  CHECK(streamed_eval.at("loss") == doctest::Approx(memory_eval.at("loss")).epsilon(1e-6));
  CHECK(streamed_eval.at("accuracy") == memory_eval.at("accuracy"));
}

TEST_CASE("H5Batches shuffles whole blocks of rows: every row once per epoch, a new block order each epoch") {
  // x's row i holds the value i, so each batch shows which rows it came from.
  const int64_t n = 100;
  std::vector<float> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = float(i);
  std::string path = scratch("rows.h5");
  {
    h5::File f(path, h5::File::create);
    f.write("x", rows, {n, 1});
    f.write("y", rows, {n, 1});
  }
  H5Batches source(path, {.x = "x", .y = "y", .batch_size = 16});
  CHECK(source.num_batches() == 7);
  std::mt19937_64 random(11);
  std::vector<std::vector<int64_t>> first_rows_per_epoch;
  for (int epoch = 0; epoch < 3; ++epoch) {
    source.begin_epoch(true, random);
    std::vector<int64_t> seen, firsts;
    for (int64_t b = 0; b < source.num_batches(); ++b) {
      auto [xb, yb] = source.batch(b);
      std::vector<float> xs = xb.to_vector();
      CHECK(yb.to_vector() == xs);  // targets stay paired with their inputs
      int64_t block = int64_t(xs[0]) / 16;
      std::set<int64_t> in_batch;
      for (float v : xs) {
        CHECK(int64_t(v) / 16 == block);  // every row of a batch comes from one block
        seen.push_back(int64_t(v));
        in_batch.insert(int64_t(v));
      }
      firsts.push_back(*in_batch.begin());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    CHECK(seen == all);
    first_rows_per_epoch.push_back(firsts);
  }
  CHECK(first_rows_per_epoch[0] != first_rows_per_epoch[1]);
  CHECK(first_rows_per_epoch[1] != first_rows_per_epoch[2]);
}

TEST_CASE("validation_batches gives the same val_ metrics as validation_data") {
  set_backend("reference");
  Digits digits = mnist_digits(160);
  std::string path = write_digits(digits, "digits.h5");
  auto [x, y] = digits_in_memory(digits);
  Tensor x_val = x.slice(128, 160), y_val = y.slice(128, 160);

  set_random_seed(3);
  Sequential a = test::small_digit_cnn();
  History ha = a.fit(x.slice(0, 128), y.slice(0, 128),
                     {.epochs = 1,
                      .batch_size = 32,
                      .verbose = 0,
                      .shuffle = false,
                      .validation_data = std::make_pair(x_val, y_val)});
  set_random_seed(3);
  Sequential b = test::small_digit_cnn();
  H5BatchesOptions train = kDigits, validation = kDigits;
  train.end = 128;
  validation.begin = 128;
  H5Batches source(path, train);
  History hb = b.fit(source, {.epochs = 1,
                              .verbose = 0,
                              .shuffle = false,
                              .validation_batches = std::make_shared<H5Batches>(path, validation)});
  CHECK(hb.history["val_loss"][0] == doctest::Approx(ha.history["val_loss"][0]).epsilon(1e-6));
  CHECK(hb.history["val_accuracy"] == ha.history["val_accuracy"]);
}

TEST_CASE("H5Batches errors name the file, the dataset and the fix") {
  Digits digits = mnist_digits(20);
  std::string path = write_digits(digits, "digits.h5");
  CHECK(contains(error_of([&] { H5Batches(path, {.x = "images", .y = "y"}); }),
                 path + ": no dataset 'images' for the inputs (the file's root holds: x, y)"));
  CHECK(contains(error_of([&] {
                   H5Batches(path, {.x = "x", .y = "y", .sample_shape = {28, 28, 3}});
                 }),
                 "the rows of 'x' are (28, 28), which cannot be reshaped to the sample shape (28, 28, 3)"));
  CHECK(contains(error_of([&] { H5Batches(path, {.x = "x", .y = "y", .begin = 5, .end = 50}); }),
                 "rows [5, 50) are outside 'x', which has 20 rows"));
  CHECK(contains(error_of([&] { H5Batches(path, {.x = "x", .y = "y", .batch_size = 0}); }),
                 "batch_size must be at least 1"));
  H5Batches few_classes(path, {.x = "x", .y = "y", .batch_size = 20, .num_classes = 3});
  CHECK(contains(error_of([&] { few_classes.batch(0); }), "of 'y' is 7.000000, not a class index in [0, 3)"));

  std::string uneven = scratch("uneven.h5");
  {
    h5::File f(uneven, h5::File::create);
    f.write("x", std::vector<float>(30), {10, 3});
    f.write("y", std::vector<float>(9), {9});
  }
  CHECK(contains(error_of([&] { H5Batches(uneven, {.x = "x", .y = "y"}); }),
                 "'x' has 10 rows but 'y' has 9; inputs and targets must pair row by row"));

  set_backend("reference");
  Sequential model = test::small_digit_cnn();
  H5Batches flat(path, {.x = "x", .y = "y", .batch_size = 8, .scale = 255, .num_classes = 10});
  CHECK(
      contains(error_of([&] { model.fit(flat, {.verbose = 0, .shuffle = false}); }),
               "fit ('x' in " + path + "): x has shape (8, 28, 28) but the model expects (None, 28, 28, 1)"));
}

TEST_CASE("lamina train streams a data set from an HDF5 file: data {\"dataset\": \"h5\"}") {
  Digits digits = mnist_digits(160);
  std::string path = scratch("train.h5");
  {
    h5::File f(path, h5::File::create);
    f.write("x_train", std::vector<uint8_t>(digits.pixels.begin(), digits.pixels.begin() + 128 * 784),
            {128, 28, 28});
    f.write("y_train", std::vector<uint8_t>(digits.labels.begin(), digits.labels.begin() + 128), {128});
    f.write("x_test", std::vector<uint8_t>(digits.pixels.begin() + 128 * 784, digits.pixels.end()),
            {32, 28, 28});
    f.write("y_test", std::vector<uint8_t>(digits.labels.begin() + 128, digits.labels.end()), {32});
  }
  // The seed CNN's config with the data swapped for the file.
  std::ifstream in(std::string(LAMINA_SOURCE_DIR) + "/examples/mnist_cnn.json");
  boost::json::object config =
      boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
  config["data"] = boost::json::object{{"dataset", "h5"}, {"path", path}};
  std::string config_path = scratch("h5_config.json");
  std::ofstream(config_path) << boost::json::serialize(config);
  std::string log = scratch("train.log");
  std::string cmd = std::string(LAMINA_CLI) + " train " + config_path +
                    " --epochs 1 --limit 96 --verbose 2 --output " + scratch("out.h5") + " > " + log +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream log_in(log);
  std::string out((std::istreambuf_iterator<char>(log_in)), {});
  CHECK_MESSAGE(rc == 0, out);
  CHECK(contains(
      out, "Train on 96 samples ('x_train' in " + path + ", read batch by batch), validate on 32 samples"));
  CHECK(contains(out, "96/96 - "));
  CHECK(contains(out, "val_accuracy: "));
  CHECK(fs::exists(scratch("out.h5")));

  config["data"] = boost::json::object{{"dataset", "h5"}, {"path", path}, {"x", "images"}};
  std::ofstream(config_path) << boost::json::serialize(config);
  rc = std::system(cmd.c_str());
  std::ifstream bad_in(log);
  out.assign((std::istreambuf_iterator<char>(bad_in)), {});
  CHECK(rc != 0);
  CHECK(contains(
      out,
      path +
          ": no dataset 'images' for the inputs (the file's root holds: x_test, x_train, y_test, y_train)"));
}

// ------------------------------------------------------------------------------------------------
// The input pipeline: fit() reads the next batch on a worker thread while the current one trains.

namespace {

// In-memory batches that record which thread read each one and whether a read was under way when a
// callback ran; `delay` makes each read cost something, as a file read or a gather would.
class WatchedBatches : public TensorBatches {
 public:
  WatchedBatches(Tensor x, Tensor y, int64_t batch_size, bool prefetchable,
                 std::chrono::microseconds delay = std::chrono::microseconds(0), int64_t fail_at = -1)
      : TensorBatches(std::move(x), std::move(y), batch_size),
        prefetchable_(prefetchable),
        delay_(delay),
        fail_at_(fail_at) {}
  bool prefetchable() const override { return prefetchable_; }
  std::pair<std::vector<Tensor>, std::vector<Tensor>> batch_lists(int64_t index) override {
    reading = true;
    std::this_thread::sleep_for(delay_);
    readers.push_back(std::this_thread::get_id());
    indices.push_back(index);
    if (index == fail_at_) {
      reading = false;
      throw Error("batch " + std::to_string(index) + " is damaged");
    }
    auto batch = TensorBatches::batch_lists(index);
    reading = false;
    return batch;
  }
  void begin_epoch(bool shuffle, std::mt19937_64& random) override {
    if (reading) read_during_callback = true;
    TensorBatches::begin_epoch(shuffle, random);
  }
  int64_t on_other_threads() const {
    return std::count_if(readers.begin(), readers.end(),
                         [](auto id) { return id != std::this_thread::get_id(); });
  }

  std::atomic<bool> reading{false}, read_during_callback{false};
  std::vector<std::thread::id> readers;  // written by one thread at a time: fit hands the source over
  std::vector<int64_t> indices;

 private:
  bool prefetchable_;
  std::chrono::microseconds delay_;
  int64_t fail_at_;
};

// Notes whether the source was being read while a callback ran; may stop training at a batch.
struct ReadWatcher : Callback {
  WatchedBatches* source;
  int64_t stop_at = -1;
  void on_batch_end(Model& model, int64_t batch, const std::map<std::string, double>&) override {
    if (source->reading) source->read_during_callback = true;
    if (batch == stop_at) model.stop_training = true;
  }
  void on_epoch_end(Model&, int, const std::map<std::string, double>&) override {
    if (source->reading) source->read_during_callback = true;
  }
};

}  // namespace

TEST_CASE("fit reads the next batch on a worker thread while a step trains, and trains exactly as without") {
  set_backend("reference");
  Digits digits = mnist_digits(160);
  auto [x, y] = digits_in_memory(digits);
  std::vector<std::vector<float>> weights;
  std::vector<double> losses;
  for (const char* mode : {"off", "on"}) {
    CAPTURE(mode);
    test::ScopedEnv prefetch("LAMINA_PREFETCH", mode);
    set_random_seed(9);
    Sequential model = test::small_digit_cnn();
    WatchedBatches source(x, y, 32, true);
    auto watcher = std::make_shared<ReadWatcher>();
    watcher->source = &source;
    History h = model.fit(source, {.epochs = 2, .verbose = 0, .shuffle = true, .callbacks = {watcher}});
    // Every batch once per epoch, in order, never while a callback or the next epoch's shuffle ran.
    CHECK(source.indices == std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4});
    CHECK_FALSE(source.read_during_callback);
    // on: the first batch of each epoch is read when it is needed, the rest ahead on the worker
    CHECK(source.on_other_threads() == (std::string(mode) == "on" ? 8 : 0));
    if (weights.empty()) {
      weights = test::weights_of(model);
      losses = h.history["loss"];
    } else {
      CHECK(test::weights_of(model) == weights);  // bit for bit: the same batches in the same order
      CHECK(h.history["loss"] == losses);
    }
  }
}

TEST_CASE("fit prefetches only when reading a batch costs something, and only sources that allow it") {
  set_backend("reference");
  Digits digits = mnist_digits(96);
  auto [x, y] = digits_in_memory(digits);
  test::ScopedEnv automatic("LAMINA_PREFETCH", "auto");
  struct Case {
    const char* name;
    bool prefetchable;
    std::chrono::microseconds delay;
    int64_t expected_on_worker;  // of 3 batches x 2 epochs
  };
  for (const Case& c :
       {Case{"a slow source is prefetched after two timed reads", true, std::chrono::microseconds(300), 3},
        Case{"a source that does not allow it is not", false, std::chrono::microseconds(300), 0},
        Case{"a fast source (slices of data in order) is not", true, std::chrono::microseconds(0), 0}}) {
    CAPTURE(c.name);
    Sequential model = test::small_digit_cnn();
    WatchedBatches source(x, y, 32, c.prefetchable, c.delay);
    model.fit(source, {.epochs = 2, .verbose = 0, .shuffle = false});
    // epoch 1: batches 0 and 1 timed here, batch 2 on the worker; epoch 2: 1 and 2 on the worker
    CHECK(source.on_other_threads() == c.expected_on_worker);
  }
  test::ScopedEnv wrong("LAMINA_PREFETCH", "sometimes");
  Sequential model = test::small_digit_cnn();
  WatchedBatches source(x, y, 32, true);
  CHECK(contains(error_of([&] { model.fit(source, {.epochs = 1, .verbose = 0}); }),
                 "LAMINA_PREFETCH='sometimes' is not one of auto, on (1), off (0)"));
}

TEST_CASE(
    "a batch that fails on the worker fails fit with the source's error; an early stop leaves no read "
    "behind") {
  set_backend("reference");
  Digits digits = mnist_digits(160);
  auto [x, y] = digits_in_memory(digits);
  test::ScopedEnv on("LAMINA_PREFETCH", "on");
  Sequential model = test::small_digit_cnn();
  {
    WatchedBatches source(x, y, 32, true, std::chrono::microseconds(0), /*fail_at=*/3);
    CHECK(contains(error_of([&] { model.fit(source, {.epochs = 1, .verbose = 0}); }), "batch 3 is damaged"));
    CHECK(source.indices == std::vector<int64_t>{0, 1, 2, 3});
  }
  // A callback stops training at batch 1 while batch 2 is being read: fit waits for that read, the
  // next fit starts cleanly, and no read overlaps a callback.
  WatchedBatches source(x, y, 32, true, std::chrono::microseconds(2000));
  auto watcher = std::make_shared<ReadWatcher>();
  watcher->source = &source;
  watcher->stop_at = 1;
  model.fit(source, {.epochs = 3, .verbose = 0, .callbacks = {watcher}});
  CHECK(source.indices == std::vector<int64_t>{0, 1, 2});
  CHECK_FALSE(source.read_during_callback);
  CHECK_FALSE(source.reading);
  watcher->stop_at = -1;
  History h = model.fit(source, {.epochs = 1, .verbose = 0, .callbacks = {watcher}});
  CHECK(h.epoch.size() == 1);
  CHECK(source.indices.size() == 3 + 5);
}
