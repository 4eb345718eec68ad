// Reliability: hostile files give errors and never crash or hang, a save killed half-way leaves the
// last good file, a resumed run repeats an uninterrupted one bit for bit, broken plugins are
// contained, and predict runs on one model from several threads. docs/reliability.md.
#include "support.hpp"

#include <lamina/h5.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace lamina;
using namespace lamina::layers;
using lamina::test::error_of;

namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("text was: " << s);
  return false;
}

std::string scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("lamina_reliability_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// A small trained-shape classifier: Dense(8, relu), Dropout, Dense(3, softmax) on 4 inputs.
Sequential small_classifier(const std::string& optimizer = "adam") {
  Sequential m;
  m.add(Dense(8, {.input_dim = 4, .activation = "relu"}));
  m.add(Dropout(0.25));
  m.add(Dense(3, {.activation = "softmax"}));
  m.compile("categorical_crossentropy", optimizer, {"accuracy"});
  return m;
}

// Callers copy x and y out rather than binding them: clang before 16 cannot capture a structured
// binding in a lambda, and the sanitizer build uses clang 14.
std::pair<Tensor, Tensor> small_data(int64_t n) {
  Tensor x = test::random_tensor({n, 4}, 11);
  std::vector<float> labels(static_cast<size_t>(n));
  std::vector<float> xv = x.to_vector();
  for (int64_t i = 0; i < n; ++i)
    labels[size_t(i)] = float((xv[size_t(i) * 4] > 0) + (xv[size_t(i) * 4 + 1] > 0.5f));
  return {x, to_categorical(Tensor::from_vector(labels, {n}), 3)};
}

std::vector<std::vector<float>> all_weights(const Model& m) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < m.size(); ++i)
    for (const Tensor& w : m.layer(i).get_weights()) out.push_back(w.to_vector());
  return out;
}

bool bit_identical(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

struct Run {
  int status = 0;  // as waitpid gives it
  std::string output;
};

// Runs the lamina command; never through a shell's own crash handling.
Run run_cli(const std::string& args, int timeout_s = 120) {
  std::string out = scratch("cli_output.txt");
  std::string cmd = "timeout -s KILL " + std::to_string(timeout_s) + " " + std::string(LAMINA_CLI) + " " +
                    args + " > " + out + " 2>&1";
  Run r;
  r.status = std::system(cmd.c_str());
  r.output = read_text(out);
  return r;
}

// `lamina evaluate` on a hostile file: a clean exit 1 with lamina's message, no signal, no hang.
void expect_clean_rejection(const std::string& model, const std::string& data, const std::string& expected) {
  Run r = run_cli("evaluate " + model + " --data " + data);
  INFO("file: " << model << "\noutput: " << r.output);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 1);  // 124/137 would be the timeout, 128+N a signal
  CHECK(contains(r.output, "lamina: error: "));
  CHECK(contains(r.output, expected));
}

// A labelled data file the small classifier can be evaluated on.
std::string small_data_file() {
  std::string path = scratch("data.h5");
  auto data = small_data(16);
  Tensor x = data.first, y = data.second;
  h5::File f(path, h5::File::create);
  f.write("x", x);
  f.write("y", y);
  return "h5:" + path + ":x:y";
}

std::string saved_small_model(const std::string& name) {
  set_backend("reference");
  set_random_seed(3);
  Sequential m = small_classifier();
  auto data = small_data(16);
  Tensor x = data.first, y = data.second;
  m.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  std::string path = scratch(name);
  m.save(path);
  return path;
}

void set_model_config(const std::string& path, const std::string& config) {
  h5::File f(path, h5::File::read_write);
  f.set_attribute("/", "model_config", config);
}

// Replaces the first `from` in the config text, written with or without spaces after ':' and ','.
std::string replace_once(std::string s, std::string from, std::string to) {
  size_t at = s.find(from);
  if (at == std::string::npos) {
    auto compact = [](std::string t) {
      for (const char* sep : {": ", ", "})
        for (size_t i; (i = t.find(sep)) != std::string::npos;) t.erase(i + 1, 1);
      return t;
    };
    from = compact(from);
    at = s.find(from);
  }
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Hostile model files through `lamina evaluate`

TEST_CASE("lamina evaluate rejects truncated, garbage and non-HDF5 files with a message") {
  std::string good = saved_small_model("good.h5");
  std::string data = small_data_file();
  std::vector<char> bytes = read_bytes(good);
  for (size_t keep :
       {size_t(0), size_t(7), size_t(512), bytes.size() / 3, bytes.size() / 2, bytes.size() - 100}) {
    std::string p = scratch("truncated_" + std::to_string(keep) + ".h5");
    write_bytes(p, std::vector<char>(bytes.begin(), bytes.begin() + long(keep)));
    expect_clean_rejection(p, data, p);
  }
  std::vector<char> garbage(4096);
  uint64_t z = 88172645463325252ull;
  for (char& c : garbage) z ^= z << 13, z ^= z >> 7, z ^= z << 17, c = char(z);
  write_bytes(scratch("garbage.h5"), garbage);
  expect_clean_rejection(scratch("garbage.h5"), data, "is not an HDF5 file");
  std::ofstream(scratch("config.h5")) << R"({"class_name": "Sequential"})";
  expect_clean_rejection(scratch("config.h5"), data, "looks like JSON");
  expect_clean_rejection(scratch("no_such_file.h5"), data, "does not exist");
  expect_clean_rejection(fs::temp_directory_path().string(), data, "folder");
}

TEST_CASE("lamina evaluate rejects broken JSON, unknown classes and impossible sizes in model_config") {
  std::string good = saved_small_model("good.h5");
  std::string data = small_data_file();
  std::string config = h5::File(good).string_attribute("/", "model_config");
  struct Case {
    std::string name, config, expected;
  };
  std::vector<Case> cases{
      {"broken_json", config.substr(0, config.size() / 2), "is not valid JSON"},
      {"not_a_model", "[1, 2, 3]", "model_config"},
      {"unknown_class", replace_once(config, "\"Dense\"", "\"NoSuchLayer\""), "NoSuchLayer"},
      {"negative_units", replace_once(config, "\"units\": 8", "\"units\": -8"), "units"},
      {"huge_units", replace_once(config, "\"units\": 8", "\"units\": 4000000000000"), "dense"},
      {"huge_input",
       replace_once(replace_once(config, "[null, 4]", "[null, 9223372036854775807]"), "[null, 4]",
                    "[null, 9223372036854775807]"),
       "model_config"},
      {"units_as_text", replace_once(config, "\"units\": 8", "\"units\": \"eight\""), "units"},
  };
  for (const Case& c : cases) {
    std::string p = scratch(c.name + ".h5");
    fs::copy_file(good, p, fs::copy_options::overwrite_existing);
    set_model_config(p, c.config);
    expect_clean_rejection(p, data, c.expected);
  }
}

TEST_CASE("lamina evaluate rejects weights whose shape does not fit the model") {
  std::string good = saved_small_model("good.h5");
  std::string data = small_data_file();
  std::string p = scratch("bad_shape.h5");
  fs::copy_file(good, p, fs::copy_options::overwrite_existing);
  {
    h5::File f(p, h5::File::read_write);
    // The first Dense kernel, replaced by a (1, 2) array under the same name.
    std::string group = "model_weights/dense/dense";
    REQUIRE(f.is_dataset(group + "/kernel:0"));
    f.remove_attribute("model_weights/dense", "weight_names");
    f.set_attribute("model_weights/dense", "weight_names",
                    std::vector<std::string>{"dense/kernel_bad:0", "dense/bias:0"});
    // As many values as the real kernel (4, 8), so the config's sizes stay within what is stored.
    f.write(group + "/kernel_bad:0", std::vector<float>(32, 1.0f), Shape{8, 4});
  }
  expect_clean_rejection(p, data, "has shape (8, 4) in the file");
}

TEST_CASE("a file that crashes libhdf5 is reported by lamina evaluate and load_model, not fatal") {
  // Found by mutation testing (docs/reliability.md): one byte of the tf.keras 2.14 file's root
  // attributes set to 0xFF makes libhdf5 1.10 read a variable-length string from a bad global heap
  // address and die by SIGSEGV in H5HG_read. lamina reads untrusted files in a child process first.
  std::vector<char> bytes = read_bytes(std::string(LAMINA_SOURCE_DIR) +
                                       "/tests/data/keras_models/tfk2.14.0_cnn_adam_01110001-ml-mnist.h5");
  REQUIRE(bytes.size() == 1172032);
  REQUIRE(bytes[1055] == 0);
  bytes[1055] = char(0xFF);
  std::string crasher = scratch("hdf5_crash.h5");
  write_bytes(crasher, bytes);
  std::string data = small_data_file();
  expect_clean_rejection(crasher, data, "libhdf5 crashed reading the file (signal");
  CHECK(contains(error_of([&] { load_model(crasher); }), "the file is corrupt"));
  // The process that caught it goes on working.
  std::string good = saved_small_model("good.h5");
  CHECK(load_model(good).size() == 3);
}

TEST_CASE(
    "a file whose groups list themselves as children is read once per object (found by fuzz_h5_model)") {
  // tests/data/h5_damaged/empty_link_names.h5: a Dense model's file with links of empty names, which
  // libhdf5 resolves to the group holding them. The probe that reads every object before the loader
  // does once walked each such path (two per group, 64 levels deep: 2^64 visits) until its 30 s limit;
  // it now reads each object once, by its address.
  const std::string file = std::string(LAMINA_SOURCE_DIR) + "/tests/data/h5_damaged/empty_link_names.h5";
  const std::string error = error_of([&] { load_model(file); });
  CHECK(contains(error, "no 'model_weights' group; the file has a model config but no weights"));
  CHECK(!contains(error, "did not finish reading the file"));  // not the probe's time limit
}

// ------------------------------------------------------------------------------------------------
// Other readers

TEST_CASE("config values of the wrong type or range are errors naming the key (found by fuzz_model_json)") {
  set_backend("reference");
  std::string config = R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Conv2D", "config": {"filters": 5.5e100, "kernel_size": [3, 3],
                                          "batch_input_shape": [null, 6, 6, 1]}}]}})";
  CHECK(contains(error_of([&] { model_from_json(config); }), "'filters' must be an integer"));
  std::string huge = R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Dense", "config": {"units": 18446744073709551615, "batch_input_shape": [null, 2]}}]}})";
  CHECK(contains(error_of([&] { model_from_json(huge); }), "'units' must be an integer"));
  // Found by fuzz_model_json: a class_name that is not a string.
  CHECK(contains(error_of([] { model_from_json(R"({"class_name": {"name": "sequential"}, "config": {}})"); }),
                 "class_name must be a string"));
  CHECK(contains(error_of([] {
                   model_from_json(
                       R"({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense",
                       "config": {"units": 2, "batch_input_shape": [null, 2],
                                  "kernel_initializer": {"class_name": "VarianceScaling", "config": {"mode": 3}}}}]}})");
                 }),
                 "'mode' must be a string"));
}

TEST_CASE("an IDX header that declares more data than the file holds is an error, not an allocation") {
  std::string p = scratch("huge.idx");
  // idx3, ubyte, 2^28 x 2^2 x 2^2 declared (4 GiB), 16 bytes present.
  const char header[] = {0, 0, 8, 3, 16, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4};
  std::vector<char> bytes(32, 1);
  std::copy(std::begin(header), std::end(header), bytes.begin());
  write_bytes(p, bytes);
  auto start = std::chrono::steady_clock::now();
  CHECK(contains(error_of([&] { read_idx(p); }), "truncated or corrupt IDX file"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  // Four dimensions of 2^28: the product overflows int64 unless checked.
  std::vector<char> overflow{0, 0, 8, 4, 16, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0};
  write_bytes(p, overflow);
  CHECK(contains(error_of([&] { read_idx(p); }), "too large"));
}

TEST_CASE("to_categorical refuses a label too large to be a class index") {
  CHECK(contains(error_of([] { to_categorical(Tensor::from_vector({0, 3e9f}, {2})); }), "not a class index"));
  CHECK(contains(error_of([] {
                   to_categorical(Tensor::from_vector({0, INFINITY}, {2}));
                 }),
                 "not a class index"));
  // Found by fuzz_idx: a label far outside int64's range, with num_classes given.
  CHECK(contains(error_of([] {
                   to_categorical(Tensor::from_vector({0, -4.2e37f}, {2}), 3);
                 }),
                 "not a class index"));
}

TEST_CASE("plugin manifests with fields of the wrong type are reported as unreadable") {
  std::string folder = scratch("manifests");
  fs::create_directories(folder);
  std::ofstream(folder + "/numbers.json") << R"({"name": 7, "kind": "layer", "library": "x.so"})";
  std::ofstream(folder + "/provides.json")
      << R"({"name": "p", "kind": "layer", "library": "x.so", "provides": [1]})";
  std::ofstream(folder + "/nested.json") << R"({"name": "n", "kind": {"a": 1}, "library": "x.so"})";
  add_plugin_path(folder);
  int seen = 0;
  for (const PluginInfo& p : list_plugins()) {
    if (p.path.find(folder) != 0) continue;
    ++seen;
    CHECK_FALSE(p.usable);
    CHECK(contains(p.reason, "unreadable manifest"));
  }
  CHECK(seen == 3);
}

// ------------------------------------------------------------------------------------------------
// Checkpoints

namespace {
// Saves the model after every batch: a checkpoint written as often as possible.
struct SaveEveryBatch : Callback {
  std::string path;
  explicit SaveEveryBatch(std::string p) : path(std::move(p)) {}
  void on_batch_end(Model& m, int64_t, const std::map<std::string, double>&) override { m.save(path); }
};
}  // namespace

TEST_CASE("a training process killed with SIGKILL while it saves leaves the last good checkpoint") {
  set_backend("reference");
  std::string path = scratch("checkpoint.h5");
  auto data = small_data(64);
  Tensor x = data.first, y = data.second;
  int loaded = 0;
  for (int attempt = 0; attempt < 12; ++attempt) {
    fs::remove(path);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      try {
        set_random_seed(uint64_t(attempt));
        Sequential m = small_classifier();
        auto cb = std::make_shared<SaveEveryBatch>(path);
        m.fit(x, y, {.epochs = 1000, .batch_size = 4, .verbose = 0, .callbacks = {cb}});
      } catch (...) {
      }
      _exit(3);
    }
    // Wait for the first checkpoint, then kill at a different moment of the saving loop each time.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!fs::exists(path) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + 7919 * attempt % 20000));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(fs::exists(path));
    Sequential m = load_model(path);
    CHECK(m.compiled());
    CHECK(m.optimizer_state().iterations > 0);
    loaded += m.predict(x).shape() == Shape{64, 3};
    // The temporary file of the interrupted save may remain beside it; it is never the checkpoint.
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
      if (e.path().filename().string().rfind(".checkpoint.h5.tmp-", 0) == 0) fs::remove(e.path());
  }
  CHECK(loaded == 12);
}

// ------------------------------------------------------------------------------------------------
// Exact resume

namespace {
void check_exact_resume(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  auto data = small_data(40);
  Tensor x = data.first, y = data.second;
  const FitOptions fit{.epochs = 5, .batch_size = 6, .verbose = 0};  // batches of 6 and a last of 4

  set_random_seed(21);
  Sequential straight = small_classifier();
  straight.fit(x, y, fit);

  set_random_seed(21);
  Sequential first = small_classifier();
  FitOptions part = fit;
  part.epochs = 2;
  first.fit(x, y, part);
  std::string path = scratch("resume_" + backend_name + ".h5");
  first.save(path);

  set_random_seed(999);  // whatever the process does in between
  Sequential resumed = load_model(path);
  CHECK(resumed.training_state().epoch == 2);
  FitOptions rest = fit;
  rest.initial_epoch = int(resumed.training_state().epoch);
  History h = resumed.fit(x, y, rest);
  CHECK(h.epoch == std::vector<int>{2, 3, 4});
  CHECK(resumed.optimizer_state().iterations == straight.optimizer_state().iterations);
  CHECK(bit_identical(all_weights(resumed), all_weights(straight)));
  auto slots = [](const Model& m) {
    std::vector<std::vector<float>> out;
    for (auto& per_weight : m.optimizer_state().slots)
      for (auto& s : per_weight) out.push_back(s.to_vector());
    return out;
  };
  CHECK(bit_identical(slots(resumed), slots(straight)));

  // Without the training state (an older file or another writer) training still resumes, but from
  // a different data order and dropout stream, so the weights differ: the test can fail.
  {
    h5::File f(path, h5::File::read_write);
    f.remove_attribute("lamina_training_state", "rng");
    f.remove_attribute("lamina_training_state", "epoch");
  }
  Sequential approximate = load_model(path);
  approximate.fit(x, y, rest);
  CHECK_FALSE(bit_identical(all_weights(approximate), all_weights(straight)));
}
}  // namespace

TEST_CASE("reference: k epochs, save, load, continue to N gives the weights of N epochs bit for bit") {
  check_exact_resume("reference");
}

TEST_CASE("onednn: k epochs, save, load, continue to N gives the weights of N epochs bit for bit") {
  check_exact_resume("onednn");
}

TEST_CASE("a damaged training state is refused with a warning and training goes on") {
  std::string path = saved_small_model("state.h5");
  {
    h5::File f(path, h5::File::read_write);
    f.set_attribute("lamina_training_state", "rng", std::string("not a generator"));
  }
  Sequential m = load_model(path);
  CHECK(m.compiled());
  auto data = small_data(16);
  Tensor x = data.first, y = data.second;
  CHECK_NOTHROW(m.fit(x, y, {.epochs = 1, .verbose = 0}));
  Sequential n = small_classifier();
  TrainingState s;
  s.data_order = {0, 1, 1};
  CHECK(contains(error_of([&] { n.set_training_state(s); }), "not a permutation"));
}

// ------------------------------------------------------------------------------------------------
// Plugins

TEST_CASE("a plugin that crashes or exits in init is reported and skipped, and the process goes on") {
  set_backend("reference");
  add_plugin_path(std::string(LAMINA_FIXTURE_DIR) + "/init_crashes");
  int seen = 0;
  for (const PluginInfo& p : list_plugins()) {
    if (p.path.find("init_crashes") == std::string::npos || fs::path(p.path).extension() != ".so") continue;
    ++seen;
    CHECK_FALSE(p.usable);
    CHECK(contains(p.reason, "seen in a separate process that tries plugins first"));
    CHECK(contains(p.reason, "); skipped"));
    if (p.name == "init_exits") CHECK(contains(p.reason, "exit status 3"));
  }
  CHECK(seen == 2);
  CHECK(contains(error_of([] {
                   Sequential m;
                   m.add(LayerSpec{"Crashy", {{"input_shape", {3}}}});
                 }),
                 "cannot be used"));
  Sequential m = small_classifier();
  auto data = small_data(16);
  Tensor x = data.first, y = data.second;
  CHECK_NOTHROW(m.fit(x, y, {.epochs = 1, .verbose = 0}));
}

TEST_CASE("a plugin layer that throws during training makes fit throw a clean error") {
  set_backend("reference");
  add_plugin_path(std::string(LAMINA_FIXTURE_DIR) + "/call_throws");
  Sequential m;
  m.add(Dense(4, {.input_dim = 4}));
  m.add(LayerSpec{"Flaky", {}});
  m.add(Dense(3, {.activation = "softmax"}));
  m.compile("categorical_crossentropy", "sgd");
  auto data = small_data(16);
  Tensor x = data.first, y = data.second;
  auto before = all_weights(m);
  std::string message = error_of([&] { m.fit(x, y, {.epochs = 1, .verbose = 0}); });
  CHECK(contains(message, "layer 'flaky' (Flaky): Flaky lost its device in the middle of training"));
  CHECK(bit_identical(all_weights(m), before));  // the failing step changed nothing
  CHECK(m.predict(x).shape() == Shape{16, 3});   // inference does not call into the failure
  CHECK(contains(error_of([&] { m.fit(x, y, {.epochs = 1, .verbose = 0}); }), "Flaky lost its device"));
}

// ------------------------------------------------------------------------------------------------
// Threads

namespace {
void check_parallel_predict(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  std::string file = std::string(LAMINA_SOURCE_DIR) +
                     "/../shared/interop/keras_models/tfk2.14.0_cnn_adam_01110001-ml-mnist.h5";
  Sequential model = fs::exists(file) ? load_model(file, false) : [] {
    Sequential m;
    m.add(Conv2D(8, {3, 3}, {.activation = "relu", .input_shape = {28, 28, 1}}));
    m.add(MaxPooling2D({2, 2}));
    m.add(Flatten());
    m.add(Dense(10, {.activation = "softmax"}));
    return m;
  }();
  Tensor x = test::random_tensor({32, 28, 28, 1}, 5, 0.0f, 1.0f);
  const std::vector<float> expected = model.predict(x, 16).to_vector();
  constexpr int kThreads = 4, kRounds = 3;
  std::vector<int> matches(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int r = 0; r < kRounds; ++r) {
          std::vector<float> got = model.predict(x, 16).to_vector();
          matches[size_t(t)] += got.size() == expected.size() &&
                                std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0;
        }
      } catch (const std::exception& e) {
        errors[size_t(t)] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    CHECK(errors[size_t(t)] == "");
    CHECK(matches[size_t(t)] == kRounds);
  }
}
}  // namespace

TEST_CASE("reference: predict on one model from several threads at once gives the single-threaded result") {
  check_parallel_predict("reference");
}

TEST_CASE("onednn: predict on one model from several threads at once gives the single-threaded result") {
  check_parallel_predict("onednn");
}
