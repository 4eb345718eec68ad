// Helpers shared by the test files.
#pragma once

#include <lamina/lamina.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace lamina::test {

// Ends this test case as skipped: ctest reports it as "Skipped" (exit code 77) with the reason.
[[noreturn]] inline void skip(const std::string& reason) {
  std::cout << "SKIPPED: " << reason << std::endl;
  std::exit(77);
}

// The backends this build was configured with (see tests/CMakeLists.txt).
inline std::vector<std::string> configured_backends() {
  std::vector<std::string> out;
  std::stringstream s(LAMINA_TEST_BACKENDS);
  std::string item;
  while (std::getline(s, item, ',')) out.push_back(item);
  return out;
}

// Whether the backend `name` can run here (a test looping over every backend notes the others).
inline bool backend_usable(const std::string& name) {
  for (const auto& b : available_backends())
    if (b == name) return true;
  return false;
}

// Selects `name`, or skips the test case with the reason the backend cannot be used.
inline void use_backend_or_skip(const std::string& name) {
  for (const auto& b : available_backends())
    if (b == name) {
      set_backend(name);
      return;
    }
  std::string why = "no plugin for it was found";
  for (const auto& p : list_plugins())
    if (p.name == name) why = p.reason;
  skip("backend '" + name + "' cannot run here: " + why);
}

// A model of the one layer `class_name` with its Keras `config`, on samples of `input_shape`, on
// the reference backend.
inline Sequential single_layer(const std::string& class_name, boost::json::object config,
                               const Shape& input_shape) {
  set_backend("reference");
  config["input_shape"] = layers::detail::to_json_array(input_shape);
  Sequential model;
  model.add(LayerSpec{class_name, config});
  return model;
}

// Restores the previously active backend at scope exit.
struct BackendScope {
  std::string previous = backend();
  explicit BackendScope(const std::string& name) { set_backend(name); }
  ~BackendScope() { set_backend(previous); }
};

// Sets an environment variable for the scope, restoring what was there before.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_.c_str(), previous_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, previous_;
  bool had_ = false;
};

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Deterministic pseudo-random values in [lo, hi).
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(size_t(shape_size(shape)));
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    x = lo + (hi - lo) * float(z >> 40) / float(1 << 24);
  }
  return Tensor::from_vector(v, shape);
}

// Runs `body` and returns the lamina::Error message it throws ("" if none).
template <class Body>
std::string error_of(Body&& body) {
  try {
    body();
  } catch (const lamina::Error& e) {
    return e.what();
  }
  return "";
}

// A file in this test process's own folder under the system's temporary directory; the folder goes
// when the process exits (ctest runs one test case per process).
inline std::string scratch(const std::string& name) {
  static struct Folder {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("lamina_tests_" + std::to_string(getpid()));
    Folder() { std::filesystem::create_directories(path); }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } folder;
  return (folder.path / name).string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

#ifdef LAMINA_CLI
// Runs the lamina command-line tool with `args`; returns what it printed (stdout and stderr) and
// sets *rc to its exit status (-1 when it did not exit normally).
inline std::string run_cli(const std::string& args, int* rc) {
  const std::string out = scratch("cli_output.txt");
  const std::string cmd = std::string(LAMINA_CLI) + " " + args + " > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return read_text(out);
}
#endif

// The small digits CNN of the data-pipeline tests: Conv2D 4 3x3 relu, MaxPooling 2x2, Dense 10
// softmax; categorical cross-entropy, Adam, accuracy.
inline Sequential small_digit_cnn() {
  using namespace lamina::layers;
  Sequential model;
  model.add(Conv2D(4, {3, 3}, {.activation = "relu", .input_shape = {28, 28, 1}}));
  model.add(MaxPooling2D({2, 2}));
  model.add(Flatten());
  model.add(Dense(10, {.activation = "softmax"}));
  model.compile("categorical_crossentropy", "adam", {"accuracy"});
  return model;
}

// A float32 (or int32), C-order .npy file (format 1.0 to 3.0), as NumPy writes one.
inline Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  char magic[8];
  in.read(magic, 8);
  REQUIRE(std::memcmp(magic, "\x93NUMPY", 6) == 0);
  uint32_t header_size = 0;
  unsigned char size_bytes[4] = {};
  in.read(reinterpret_cast<char*>(size_bytes), magic[6] == 1 ? 2 : 4);
  for (int i = 3; i >= 0; --i) header_size = header_size * 256 + size_bytes[i];
  std::string header(header_size, ' ');
  in.read(header.data(), header_size);
  // float32, or int32 (token ids) read as float32, as lamina carries them
  const bool int32 = header.find("'descr': '<i4'") != std::string::npos;
  REQUIRE((int32 || header.find("'descr': '<f4'") != std::string::npos));
  REQUIRE((header.find("'fortran_order': False") != std::string::npos));
  Shape shape;
  const size_t open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  for (std::string d; std::getline(dims, d, ',');)
    if (d.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(d));
  std::vector<float> values(size_t(shape_size(shape)));
  if (int32) {
    std::vector<int32_t> ints(values.size());
    in.read(reinterpret_cast<char*>(ints.data()), std::streamsize(ints.size() * sizeof(int32_t)));
    std::copy(ints.begin(), ints.end(), values.begin());
  } else {
    in.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * sizeof(float)));
  }
  REQUIRE(in.good());
  return Tensor::from_vector(values, shape);
}

// A small residual network on 28x28x1 digits, written with the functional API: two 3x3
// convolutions whose outputs are added (a skip connection), optionally with BatchNormalization on
// the second branch, then pooling and a softmax classifier.
inline Model small_residual_cnn(bool batch_norm = false) {
  using namespace lamina::layers;
  KerasTensor inputs = Input({28, 28, 1}, "image");
  KerasTensor x = Conv2D(4, {3, 3}, {.padding = "same", .activation = "relu"})(inputs);
  KerasTensor y = Conv2D(4, {3, 3}, {.padding = "same"})(x);
  if (batch_norm) y = BatchNormalization()(y);
  x = Activation("relu")(Add()({x, y}));
  x = MaxPooling2D({2, 2})(x);
  KerasTensor outputs = Dense(10, {.activation = "softmax"})(Flatten()(x));
  Model model(inputs, outputs, "small_residual_cnn");
  model.compile("categorical_crossentropy", "adam", {"accuracy"});
  return model;
}

// Every weight of every layer, in order, one vector per weight.
inline std::vector<std::vector<float>> weights_of(const Model& model) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < model.size(); ++i)
    for (const Tensor& w : model.layer(i).get_weights()) out.push_back(w.to_vector());
  return out;
}
// The same, end to end in one vector.
inline std::vector<float> flat_weights_of(const Model& model) {
  std::vector<float> out;
  for (const auto& w : weights_of(model)) out.insert(out.end(), w.begin(), w.end());
  return out;
}

}  // namespace lamina::test
