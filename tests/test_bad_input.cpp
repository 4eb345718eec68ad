// Bad input gives an error that says what was wrong, where, and how to fix it; nothing crashes.
#include "support.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace lamina;
using namespace lamina::layers;
using test::error_of;

namespace {
bool contains(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("message was: " << s);
  return false;
}
Sequential small_model() {
  set_backend("reference");
  Sequential m;
  m.add(Dense(4, {.input_dim = 2, .activation = "relu"}));
  m.add(Dense(3, {.activation = "softmax"}));
  m.compile("categorical_crossentropy", "sgd", {"accuracy"});
  return m;
}
}  // namespace

TEST_CASE("fit and predict name the expected input shape") {
  Sequential m = small_model();
  Tensor x = Tensor::zeros({5, 3}), y = Tensor::zeros({5, 3});
  CHECK(contains(error_of([&] { m.fit(x, y, {.verbose = 0}); }), "x has shape (5, 3) but the model expects (None, 2)"));
  CHECK(contains(error_of([&] { m.predict(Tensor::zeros({4, 2, 1})); }), "reshape it"));
}

TEST_CASE("labels that do not match the output say how to fix them") {
  Sequential m = small_model();
  Tensor x = Tensor::zeros({5, 2});
  CHECK(contains(error_of([&] { m.fit(x, Tensor::zeros({5}), {.verbose = 0}); }), "to_categorical(y, 3)"));
  CHECK(contains(error_of([&] { m.fit(x, Tensor::zeros({4, 3}), {.verbose = 0}); }), "x has 5 samples but y has 4"));
}

TEST_CASE("a layer config with a missing or invalid key names the layer and the key") {
  set_backend("reference");
  Sequential m;
  LayerSpec no_units{"Dense", {{"name", "hidden"}, {"input_dim", 2}}};
  CHECK(contains(error_of([&] { m.add(no_units); }), "'units'"));
  CHECK(contains(error_of([&] { m.add(no_units); }), "hidden"));
  CHECK(contains(error_of([&] { m.add(Dense(3, {.input_dim = 2, .activation = "swishy"})); }), "swishy"));
  Sequential n;
  CHECK(contains(error_of([&] { n.add(Dense(3)); }), "needs an input shape"));
}

TEST_CASE("unknown layer, optimizer, loss and metric names are errors that list what exists") {
  set_backend("reference");
  Sequential m;
  CHECK(contains(error_of([&] { m.add(LayerSpec{"Dense3D", {{"input_dim", 2}}}); }), "unknown layer class 'Dense3D'"));
  m.add(Dense(1, {.input_dim = 2}));
  CHECK(contains(error_of([&] { m.compile("mse", "adamx"); }), "unknown optimizer class 'adamx'"));
  CHECK(contains(error_of([&] { m.compile("hinge_loss", "sgd"); }), "unknown loss 'hinge_loss'"));
  CHECK(contains(error_of([&] { m.compile("mse", "sgd", {"f1"}); }), "unknown metric 'f1'"));
}

TEST_CASE("an unknown backend name lists the available backends") {
  CHECK(contains(error_of([] { set_backend("tpu"); }), "Available backends: "));
}

TEST_CASE("a missing data folder or file is named") {
  CHECK(contains(error_of([] { datasets::mnist::load_data("/nonexistent/mnist"); }), "/nonexistent/mnist"));
  CHECK(contains(error_of([] { read_idx("/nonexistent/x.idx"); }), "does not exist"));
}

TEST_CASE("a non-finite loss stops training with a clear message") {
  Sequential m = small_model();
  Tensor x = Tensor::full({5, 2}, 1.0f);
  std::vector<float> labels = to_categorical(Tensor::from_vector({0, 1, 2, 0, 1}, {5}), 3).to_vector();
  labels[4] = std::nanf("");
  Tensor y = Tensor::from_vector(labels, {5, 3});
  CHECK(contains(error_of([&] { m.fit(x, y, {.verbose = 0}); }), "the loss became NaN"));
}

TEST_CASE("the lamina command exits non-zero with the message on a bad config") {
  std::string dir = std::filesystem::temp_directory_path() / "lamina_bad_config";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/bad.json") << R"({"model": {}, "compile": {}, "fit": {}, "data": {}, "epochz": 3})";
  std::string cmd = std::string(LAMINA_CLI) + " train " + dir + "/bad.json > " + dir + "/out.txt 2>&1";
  int rc = std::system(cmd.c_str());
  CHECK(rc != 0);
  std::ifstream in(dir + "/out.txt");
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(contains(out, "unknown key 'epochz'"));
}

TEST_CASE("opencl: a kernel that fails to build reports the compiler's log") {
  test::use_backend_or_skip("opencl");
  // Build options are part of a program's identity, so these force a fresh build, which fails.
  setenv("LAMINA_OPENCL_BUILD_OPTIONS", "-Dfloat=undeclared_type", 1);
  std::string message = error_of([] { ops::relu(Tensor::zeros({4})).to_vector(); });
  unsetenv("LAMINA_OPENCL_BUILD_OPTIONS");
  CHECK(contains(message, "build log"));
  CHECK(contains(message, "undeclared_type"));
  CHECK(ops::relu(Tensor::full({4}, -1.0f)).to_vector() == std::vector<float>(4, 0.0f));
}

TEST_CASE("opencl: a tensor larger than the device's largest buffer is a clear error") {
  test::use_backend_or_skip("opencl");
  CHECK(contains(error_of([] { ops::full({int64_t(1) << 38}, 1.0f); }), "CL_DEVICE_MAX_MEM_ALLOC_SIZE"));
}

TEST_CASE("opencl: a platform or device that does not exist is named in lamina plugins") {
  std::string dir = std::filesystem::temp_directory_path() / "lamina_opencl_platform";
  std::filesystem::create_directories(dir);
  std::string cmd = "LAMINA_OPENCL_PLATFORM=99 " + std::string(LAMINA_CLI) + " plugins > " + dir + "/out.txt 2>&1";
  std::system(cmd.c_str());
  std::ifstream in(dir + "/out.txt");
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t line = out.find("\nopencl ");
  if (line == std::string::npos) test::skip("this build has no opencl plugin");
  std::string row = out.substr(line + 1, out.find('\n', line + 1) - line - 1);
  // Without any OpenCL platform the reason is that instead.
  CHECK((contains(row, "LAMINA_OPENCL_PLATFORM=99") || contains(row, "no OpenCL platform")));
}
