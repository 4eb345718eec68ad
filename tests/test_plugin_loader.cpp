// Plugin discovery and loading: what `lamina plugins` shows, the message each broken plugin gets,
// and that a broken plugin never takes the process down with it. The fixtures live in
// LAMINA_FIXTURE_DIR/<situation>/ (tests/fixtures); each test case adds just the folder it needs.
#include "support.hpp"

// The team-size rule of the onednn backend, a pure function of its header.
#include "../backends/onednn/team.hpp"

#include <lamina/lamina_plugin.h>

#include <filesystem>
#include <fstream>

#include <dlfcn.h>
#include <unistd.h>

using namespace lamina;
using lamina::test::scratch;
using namespace lamina::layers;
using lamina::test::error_of;

namespace fs = std::filesystem;

namespace {

std::string fixture_folder(const std::string& situation) {
  return (fs::path(LAMINA_FIXTURE_DIR) / situation).string();
}

// The ABI this lamina speaks, as `lamina plugins` shows it: "1.1".
const std::string kAbi = std::to_string(LAMINA_ABI_MAJOR) + "." + std::to_string(LAMINA_ABI_MINOR);

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The list_plugins() entry whose library file is `library` (e.g. "fixture_swish.so").
PluginInfo plugin_with_library(const std::string& library) {
  for (const PluginInfo& p : list_plugins())
    if (fs::path(p.path).filename() == library) return p;
  FAIL("list_plugins() has no plugin with library " << library);
  return {};
}

// Dense(1) on two inputs, weights W = [1, -1], b = 0.5: a model whose SGD step is known exactly.
//   x = [[1, 2], [3, 1]], y = [[0], [1]] → pred = [[-0.5], [2.5]], error e = pred - y = [[-0.5], [1.5]]
//   dL/dW = 2/N · xᵀe = [4, 0.5],  dL/db = 2/N · Σe = 1;  SGD(0.1): W = [0.6, -1.05], b = 0.4
void expect_dense_model_still_trains() {
  set_backend("reference");
  Sequential model;
  model.add(Dense(1, {.input_dim = 2}));
  model.layer(0).set_weights({Tensor::from_vector({1, -1}, {2, 1}), Tensor::from_vector({0.5f}, {1})});
  model.compile("mean_squared_error", optimizers::SGD({.learning_rate = 0.1}));
  Tensor x = Tensor::from_vector({1, 2, 3, 1}, {2, 2});
  Tensor y = Tensor::from_vector({0, 1}, {2, 1});
  model.fit(x, y, {.epochs = 1, .batch_size = 2, .verbose = 0, .shuffle = false});
  auto w = model.layer(0).get_weights();
  CHECK(test::max_abs_diff(w[0].to_vector(), {0.6f, -1.05f}) < 1e-6f);
  CHECK(test::max_abs_diff(w[1].to_vector(), {0.4f}) < 1e-6f);
}

// Whether this process has loaded the fixture library `library` of `situation` (RTLD_NOLOAD opens
// nothing new; it finds the library by path or by file when it is already loaded).
bool fixture_is_loaded(const std::string& situation, const std::string& library) {
  const std::string path = (fs::path(fixture_folder(situation)) / library).string();
  void* handle = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle) ::dlclose(handle);  // drops the reference NOLOAD added
  return handle != nullptr;
}

// Resolving a layer class through Sequential::add; returns the error message ("" if it worked).
std::string error_adding(const std::string& class_name) {
  return error_of([&] {
    Sequential model;
    model.add(LayerSpec{class_name, {{"input_shape", {3}}}});
  });
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// What `lamina plugins` shows

TEST_CASE("the built-in plugins are listed as usable, with their path, kind, version and classes") {
  struct Expected {
    std::string name, kind, library;
    std::vector<std::string> provides;
  };
  std::vector<Expected> builtins = {
      {"reference", "backend", "lamina_backend_reference.so", {}},
      {"core",
       "layer",
       "lamina_layer_core.so",
       {"InputLayer", "Dense", "Activation", "Flatten", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
        "SpatialDropout3D", "AlphaDropout", "GaussianNoise", "GaussianDropout", "Reshape", "Embedding"}},
      {"convolutional",
       "layer",
       "lamina_layer_convolutional.so",
       {"Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"}},
      {"pooling",
       "layer",
       "lamina_layer_pooling.so",
       {"MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D", "MaxPooling2D",
        "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D"}},
      {"recurrent", "layer", "lamina_layer_recurrent.so", {"LSTM", "GRU", "Bidirectional"}},
      {"reshaping",
       "layer",
       "lamina_layer_reshaping.so",
       {"ZeroPadding2D", "Cropping2D", "UpSampling2D", "Permute", "RepeatVector"}},
      {"activations",
       "layer",
       "lamina_layer_activations.so",
       {"ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"}},
      {"builtin", "optimizer", "lamina_optimizer_builtin.so", {"SGD", "Adadelta", "Adam", "RMSprop"}},
  };
  for (const Expected& e : builtins) {
    CAPTURE(e.name);
    PluginInfo p = plugin_with_library(e.library);
    CHECK(p.name == e.name);
    CHECK(p.kind == e.kind);
    CHECK(p.usable);
    CHECK(p.version == "0.1.0");
    CHECK(p.abi == kAbi);
    CHECK(p.score > 0);
    CHECK(fs::exists(p.path));
    CHECK(p.provides == e.provides);
    CHECK(p.reason.empty() == (e.kind != "backend"));  // a usable backend's reason is its device
  }
}

TEST_CASE("a folder given to add_plugin_path is searched before the default plugin folder") {
  add_plugin_path(fixture_folder("good"));
  std::vector<std::string> path = plugin_search_path();
  REQUIRE_FALSE(path.empty());
  CHECK(path.front() == fixture_folder("good"));
  bool default_folder_searched = false;
  for (const std::string& folder : path)
    default_folder_searched |= fs::exists(fs::path(folder) / "lamina_layer_core.so");
  CHECK(default_folder_searched);
}

TEST_CASE("an unknown backend name is refused with the list of available backends") {
  std::string message = error_of([] { set_backend("tpu"); });
  CHECK(contains(message, "unknown backend 'tpu'. Available backends: "));
  for (const std::string& name : available_backends()) CHECK(contains(message, name));
  CHECK(contains(message, "reference"));
  set_backend("reference");  // the failed call changed nothing
  CHECK(backend() == "reference");
}

TEST_CASE("an unknown layer class error names the class, the known classes and the folders searched") {
  add_plugin_path(fixture_folder("good"));
  std::string message = error_adding("Dense3D");
  CHECK(contains(message, "unknown layer class 'Dense3D'. Known layer classes: "));
  for (const char* known : {"Activation", "AveragePooling2D", "Conv2D", "Dense", "Swish"})
    CHECK(contains(message, known));
  CHECK(contains(message, "Plugin folders searched: " + fixture_folder("good")));
  for (const std::string& folder : plugin_search_path()) CHECK(contains(message, folder));
  CHECK(contains(message, "LAMINA_PLUGIN_PATH"));
  expect_dense_model_still_trains();
}

// ------------------------------------------------------------------------------------------------
// A good plugin from an added folder: Swish(x) = x · sigmoid(x), in tests/fixtures/swish.cpp

TEST_CASE("a layer plugin from an added folder is listed with its manifest's name, kind and version") {
  add_plugin_path(fixture_folder("good"));
  PluginInfo p = plugin_with_library("fixture_swish.so");
  CHECK(p.name == "swish");
  CHECK(p.kind == "layer");
  CHECK(p.version == "1.2.3");
  CHECK(p.abi == kAbi);
  CHECK(p.usable);
  CHECK(p.reason.empty());
  CHECK(p.provides == std::vector<std::string>{"Swish"});
  CHECK(fs::path(p.path).parent_path() == fs::path(fixture_folder("good")));
}

TEST_CASE("a plugin layer computes its forward pass inside a Sequential model") {
  set_backend("reference");
  add_plugin_path(fixture_folder("good"));
  Sequential model;
  model.add(LayerSpec{"Swish", {{"input_shape", {4}}}});
  CHECK(model.layer(0).class_name() == "Swish");
  CHECK(model.layer(0).name() == "swish");
  CHECK(model.output_shape() == Shape{4});
  std::vector<float> x = {-2, -0.5f, 0, 3};
  std::vector<float> expected;
  for (float v : x) expected.push_back(float(v / (1.0 + std::exp(-double(v)))));
  Tensor y = model.predict(Tensor::from_vector(x, {1, 4}));
  CHECK(y.shape() == Shape{1, 4});
  CHECK(test::max_abs_diff(y.to_vector(), expected) < 1e-6f);
}

TEST_CASE("autograd differentiates a plugin layer composed of ops, so a model with it trains") {
  set_backend("reference");
  add_plugin_path(fixture_folder("good"));
  // Dense(1) → Swish, one SGD(0.5) step on one sample, all computed here in double:
  //   z = x·W + b,  s = σ(z),  out = z·s,  L = (out − t)²
  //   dL/dz = 2(out − t) · (s + z·s·(1 − s)),  dL/dW = x · dL/dz,  dL/db = dL/dz
  const double x0 = 0.5, x1 = -1.0, w0 = 0.8, w1 = 0.3, b = 0.1, t = 1.0, lr = 0.5;
  double z = x0 * w0 + x1 * w1 + b;
  double s = 1.0 / (1.0 + std::exp(-z));
  double dz = 2.0 * (z * s - t) * (s + z * s * (1.0 - s));
  Sequential model;
  model.add(Dense(1, {.input_dim = 2}));
  model.add(LayerSpec{"Swish", {}});
  model.layer(0).set_weights(
      {Tensor::from_vector({float(w0), float(w1)}, {2, 1}), Tensor::from_vector({float(b)}, {1})});
  model.compile("mean_squared_error", optimizers::SGD({.learning_rate = lr}));
  model.fit(Tensor::from_vector({float(x0), float(x1)}, {1, 2}), Tensor::from_vector({float(t)}, {1, 1}),
            {.epochs = 1, .batch_size = 1, .verbose = 0});
  auto w = model.layer(0).get_weights();
  CHECK(test::max_abs_diff(w[0].to_vector(), {float(w0 - lr * x0 * dz), float(w1 - lr * x1 * dz)}) < 1e-6f);
  CHECK(test::max_abs_diff(w[1].to_vector(), {float(b - lr * dz)}) < 1e-6f);

  // and directly: d/dx Σ swish(x) = s + x·s·(1 − s)
  Tensor input = Tensor::from_vector({-1, 0, 2}, {1, 3}).set_requires_grad(true);
  Tensor out = model.layer(1).call(input, false, 0);
  std::vector<Tensor> g = gradients(ops::sum(out), {input});
  std::vector<float> expected;
  for (double v : {-1.0, 0.0, 2.0}) {
    double sv = 1.0 / (1.0 + std::exp(-v));
    expected.push_back(float(sv + v * sv * (1.0 - sv)));
  }
  REQUIRE(g[0].defined());
  CHECK(test::max_abs_diff(g[0].to_vector(), expected) < 1e-6f);
}

TEST_CASE("a plugin layer's config survives to_json and model_from_json") {
  set_backend("reference");
  add_plugin_path(fixture_folder("good"));
  Sequential model;
  model.add(LayerSpec{"Swish", {{"beta", 2.0}, {"input_shape", {2}}, {"name", "gate"}}});
  boost::json::object config = model.layer(0).get_config();
  CHECK(config.at("beta").to_number<double>() == 2.0);
  CHECK(config.at("name").as_string() == "gate");
  Sequential copy = model_from_json(model.to_json());
  CHECK(copy.get_config() == model.get_config());
  // beta = 2: x · σ(2x)
  Tensor y = copy.predict(Tensor::from_vector({1, -1}, {1, 2}));
  float s = float(1.0 / (1.0 + std::exp(-2.0)));
  CHECK(test::max_abs_diff(y.to_vector(), {s, -(1.0f - s)}) < 1e-6f);
}

TEST_CASE("a plugin layer's config error names the layer and the key") {
  add_plugin_path(fixture_folder("good"));
  std::string message = error_of([] {
    Sequential model;
    model.add(LayerSpec{"Swish", {{"beta", -1.0}, {"input_shape", {2}}}});
  });
  CHECK(message == "Swish: config key 'beta' must be positive (in Swish 'swish')");
}

// ------------------------------------------------------------------------------------------------
// Broken plugins: each gets its own message, and the process goes on working

TEST_CASE("a library without lamina_plugin_query is refused as not a lamina plugin") {
  add_plugin_path(fixture_folder("no_entry_point"));
  PluginInfo p = plugin_with_library("fixture_no_entry_point.so");
  CHECK_FALSE(p.usable);
  CHECK(p.reason ==
        "not a lamina plugin: the library has no lamina_plugin_query/lamina_plugin_init entry point");
  CHECK(contains(error_adding("NoEntryPoint"), "layer class 'NoEntryPoint' is provided by the plugin " +
                                                   p.path + ", which cannot be used: " + p.reason +
                                                   ". Known layer classes: "));
  expect_dense_model_still_trains();
}

TEST_CASE("a plugin built for another ABI major is refused with both versions and the fix") {
  add_plugin_path(fixture_folder("abi_mismatch"));
  PluginInfo p = plugin_with_library("fixture_abi_2_0.so");
  CHECK_FALSE(p.usable);
  CHECK(p.abi == "2.0");
  CHECK(p.reason == "built for plugin ABI 2.0, but this lamina speaks ABI " + kAbi +
                        "; rebuild the plugin against this lamina's "
                        "SDK");
  std::string message = error_adding("FutureLayer");
  CHECK(contains(message, "layer class 'FutureLayer' is provided by the plugin " + p.path +
                              ", which cannot be used: built for plugin ABI 2.0"));
  expect_dense_model_still_trains();
}

TEST_CASE("a plugin that needs a newer minor ABI than this lamina's is refused with the fix") {
  add_plugin_path(fixture_folder("abi_mismatch"));
  PluginInfo p = plugin_with_library("fixture_abi_1_99.so");
  CHECK_FALSE(p.usable);
  CHECK(p.abi == "1.99");
  CHECK(p.reason == "needs plugin ABI 1.99, newer than this lamina's " + kAbi + "; upgrade lamina");
  expect_dense_model_still_trains();
}

TEST_CASE("a plugin whose init throws is reported with the exception's message") {
  add_plugin_path(fixture_folder("init_throws"));
  PluginInfo p = plugin_with_library("fixture_init_throws.so");
  CHECK_FALSE(p.usable);
  CHECK(p.reason ==
        "initialisation failed: Fragile needs the license file /etc/fragile.lic, which is missing");
  std::string message = error_adding("Fragile");
  CHECK(contains(message, "layer class 'Fragile' is provided by the plugin " + p.path +
                              ", which cannot be used: " + p.reason + ". Known layer classes: "));
  expect_dense_model_still_trains();
}

TEST_CASE("a backend plugin that scores 0 is unusable with its own reason, which set_backend repeats") {
  add_plugin_path(fixture_folder("not_usable"));
  PluginInfo p = plugin_with_library("fixture_not_usable.so");
  CHECK_FALSE(p.usable);
  CHECK(p.kind == "backend");
  CHECK(p.reason == "no quantum processing unit found (looked for /dev/qpu0)");
  std::string message = error_of([] { set_backend("not_usable"); });
  CHECK(contains(message, "unknown backend 'not_usable'. Available backends: "));
  CHECK(contains(message,
                 "; 'not_usable' cannot be used: no quantum processing unit found (looked for /dev/qpu0)"));
  std::vector<std::string> usable = available_backends();
  CHECK(std::find(usable.begin(), usable.end(), "reference") != usable.end());
  CHECK(std::find(usable.begin(), usable.end(), "not_usable") == usable.end());
  expect_dense_model_still_trains();
}

TEST_CASE("a plugin whose shared-library dependency is missing names the library the loader could not find") {
  add_plugin_path(fixture_folder("missing_dependency"));
  PluginInfo p = plugin_with_library("fixture_missing_dependency.so");
  CHECK_FALSE(p.usable);
  CHECK(p.reason.rfind("cannot load the library: ", 0) == 0);
  CHECK(contains(p.reason, "libfixture_vendor_runtime.so: cannot open shared object file"));
  std::string message = error_adding("Accelerated");
  CHECK(contains(message, "layer class 'Accelerated' is provided by the plugin " + p.path +
                              ", which cannot be used: cannot load the library: "));
  CHECK(contains(message, "libfixture_vendor_runtime.so: cannot open shared object file"));
  expect_dense_model_still_trains();
}

TEST_CASE(
    "a plugin whose manifest needs a library the machine lacks is unusable, says which, and is not loaded") {
  add_plugin_path(fixture_folder("needs"));
  PluginInfo p = plugin_with_library("fixture_needs_driver.so");
  CHECK_FALSE(p.usable);
  CHECK(
      p.reason.rfind("needs the fixture GPU's driver (libfixture_gpu_driver.so.1), which cannot be loaded on "
                     "this machine (libfixture_gpu_driver.so.1: cannot open shared object file",
                     0) == 0);
  CHECK(contains(p.reason, "); the plugin was not loaded"));
  CHECK_FALSE(fixture_is_loaded("needs", "fixture_needs_driver.so"));
  CHECK(
      contains(error_of([] { set_backend("needs_driver"); }),
               "'needs_driver' cannot be used: needs the fixture GPU's driver (libfixture_gpu_driver.so.1)"));
  // A library the machine has (libm) lets the plugin load; this one then gives its own reason.
  PluginInfo with_libm = plugin_with_library("fixture_needs_libm.so");
  CHECK(with_libm.reason == "loaded; this test backend never runs");
  CHECK(fixture_is_loaded("needs", "fixture_needs_libm.so"));
}

TEST_CASE(
    "backend auto loads backends best-first and skips those whose score_at_most the best loaded beats") {
  add_plugin_path(fixture_folder("ranked"));
  set_backend("auto");
  const std::string chosen = lamina::backend();
  const bool bounded_loaded_by_auto = fixture_is_loaded("ranked", "fixture_ranked_bounded.so");
  // No bound in its manifest: it could outscore anything, so auto had to load it (it scores 0).
  CHECK(fixture_is_loaded("ranked", "fixture_ranked_unbounded.so"));
  int chosen_score = 0;
  for (const PluginInfo& p : list_plugins())  // the listing loads every plugin
    if (p.name == chosen) chosen_score = p.score;
  MESSAGE("auto chose " << chosen << ", score " << chosen_score);
  CHECK(chosen_score > 0);
  CHECK(lamina::backend() == chosen);
  // Its manifest says it scores 50 at most: auto passed it over unless nothing better was usable.
  if (chosen_score > 50)
    CHECK_FALSE(bounded_loaded_by_auto);
  else
    MESSAGE("the best backend here scores " << chosen_score
                                            << ", not above 50: auto had to load the bounded one");
  CHECK(fixture_is_loaded("ranked", "fixture_ranked_bounded.so"));
}

TEST_CASE("of two plugins with one name, the first found is used and the second is ignored as a duplicate") {
  set_backend("reference");
  add_plugin_path(fixture_folder("duplicate_name"));
  PluginInfo first = plugin_with_library("fixture_dup_first.so");
  PluginInfo second = plugin_with_library("fixture_dup_second.so");
  CHECK(first.name == "dup");
  CHECK(first.usable);
  CHECK(second.name == "dup");
  CHECK_FALSE(second.usable);
  CHECK(second.reason == "duplicate: a plugin named 'dup' was found earlier on the search path, at " +
                             first.path + "; this one is ignored");
  Sequential model;
  CHECK_NOTHROW(model.add(LayerSpec{"DupFirst", {{"input_shape", {3}}}}));
  CHECK(contains(error_adding("DupSecond"), "layer class 'DupSecond' is provided by the plugin " +
                                                second.path +
                                                ", which cannot be used: duplicate: a plugin named 'dup'"));
  expect_dense_model_still_trains();
}

TEST_CASE("a layer class registered twice keeps the first registration; the second plugin still loads") {
  expect_dense_model_still_trains();  // the built-in Dense is registered first
  std::string core = plugin_with_library("lamina_layer_core.so").path;
  add_plugin_path(fixture_folder("class_clash"));
  PluginInfo p = plugin_with_library("fixture_class_clash.so");
  CHECK(p.usable);
  CHECK(p.reason == "layer class 'Dense' ignored: already provided by " + core);
  expect_dense_model_still_trains();  // and Dense is still the built-in one
}

TEST_CASE("a plugin whose init fails leaves none of its registrations behind") {
  add_plugin_path(fixture_folder("init_throws"));
  for (const PluginInfo& p : list_plugins())
    if (p.path.find("init_throws") != std::string::npos) CHECK_FALSE(p.usable);
  expect_dense_model_still_trains();
}

TEST_CASE("a manifest that lists a class its plugin does not register is flagged") {
  set_backend("reference");
  add_plugin_path(fixture_folder("broken_promise"));
  PluginInfo p = plugin_with_library("fixture_broken_promise.so");
  CHECK(p.usable);  // what it does register works
  CHECK(p.reason == "the manifest lists 'Ghost' but the plugin did not register it");
  Sequential model;
  CHECK_NOTHROW(model.add(LayerSpec{"Echo", {{"input_shape", {3}}}}));
  CHECK(contains(error_adding("Ghost"), "layer class 'Ghost' is not available from the plugin " + p.path +
                                            ": the manifest lists 'Ghost' but the plugin did not register "
                                            "it. Known layer classes: "));
  CHECK_FALSE(contains(error_adding("Ghost"), "unknown"));
}

TEST_CASE("unreadable manifests and manifests naming a missing library are reported, not fatal") {
  add_plugin_path(fixture_folder("bad_manifest"));
  std::string folder = fixture_folder("bad_manifest");
  bool saw_garbled = false, saw_vanished = false, saw_unbounded = false, saw_unnamed_needs = false;
  for (const PluginInfo& p : list_plugins()) {
    if (p.name == "garbled") {
      saw_garbled = true;
      CHECK_FALSE(p.usable);
      CHECK(contains(p.reason, "unreadable manifest " + (fs::path(folder) / "garbled.json").string() + " ("));
    }
    if (p.name == "unbounded") {
      saw_unbounded = true;
      CHECK_FALSE(p.usable);
      CHECK(p.reason == "unreadable manifest " + (fs::path(folder) / "unbounded.json").string() +
                            " ('score_at_most' must be a whole number from 0 to 2147483647, not \"high\")");
    }
    if (p.name == "unnamed_needs") {
      saw_unnamed_needs = true;
      CHECK_FALSE(p.usable);
      CHECK(p.reason == "unreadable manifest " + (fs::path(folder) / "unnamed_needs.json").string() +
                            " ('needs' must map shared-library names to what they are, as in "
                            "{\"libcuda.so.1\": \"the NVIDIA driver\"})");
    }
    if (p.name == "vanished") {
      saw_vanished = true;
      CHECK_FALSE(p.usable);
      std::string library = (fs::path(folder) / "lamina_layer_vanished.so").string();
      CHECK(p.reason == "manifest names " + library + ", which does not exist");
      CHECK(contains(error_adding("Vanished"), "layer class 'Vanished' is provided by the plugin " + library +
                                                   ", which cannot be used: manifest names " + library +
                                                   ", which does not exist. Known layer classes: "));
    }
  }
  CHECK(saw_garbled);
  CHECK(saw_vanished);
  CHECK(saw_unbounded);
  CHECK(saw_unnamed_needs);
  expect_dense_model_still_trains();
}

// ------------------------------------------------------------------------------------------------
// Settings from the user configuration (`backends.<name>`, lamina_plugin_configure)

namespace {

// Runs `lamina plugins` with the user configuration `config_json` and returns what it printed.
// `environment` is given to env(1): `-u NAME` removes a variable, `NAME=value` sets one (removals
// first). An empty OMP_NUM_THREADS would not do for "unset": LLVM's OpenMP aborts on it.
std::string plugins_listing_with_config(const std::string& config_json, const std::string& environment = "") {
  std::string config = scratch("user_config.json");
  std::ofstream(config) << config_json;
  std::string out = scratch("plugins_output.txt");
  std::string cmd = "env -u LAMINA_DEVICE -u LAMINA_OPENCL_PLATFORM -u LAMINA_NUM_THREADS " + environment +
                    " LAMINA_CONFIG=" + config + " " + LAMINA_CLI + " plugins > " + out + " 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
  std::ifstream in(out);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The line of a `lamina plugins` listing that starts with `name`.
std::string listing_line(const std::string& listing, const std::string& name) {
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name + " ", 0) == 0) return line;
  FAIL("no line for " << name << " in:\n" << listing);
  return {};
}

void skip_unless_opencl_is_usable() {
  for (const PluginInfo& p : list_plugins())
    if (p.name == "opencl") {
      if (!p.usable) test::skip("the opencl backend cannot run here: " + p.reason);
      return;
    }
  test::skip("the opencl backend is not built (LAMINA_WITH_OPENCL=OFF)");
}

}  // namespace

TEST_CASE("the opencl backend takes its device from backends.opencl in the user configuration") {
  skip_unless_opencl_is_usable();
  std::string line = listing_line(
      plugins_listing_with_config(R"({"backends": {"opencl": {"platform": 0, "device": 0}}})"), "opencl");
  CHECK(contains(line, " yes "));
  CHECK(contains(line, "platform 0 device 0"));

  line = listing_line(plugins_listing_with_config(R"({"backends": {"opencl": {"device": 7}}})"), "opencl");
  CHECK(contains(line, " no "));
  CHECK(contains(line, "the configuration's \"device\": 7 asks for device 7 but OpenCL platform 0"));

  // The top-level "device" is every backend's default; a backend's own entry wins.
  line = listing_line(plugins_listing_with_config(R"({"device": 7, "backends": {"opencl": {"device": 0}}})"),
                      "opencl");
  CHECK(contains(line, " yes "));
  line = listing_line(plugins_listing_with_config(R"({"device": 7})"), "opencl");
  CHECK(contains(line, "asks for device 7"));
}

TEST_CASE("the onednn backend takes its thread count from backends.onednn or LAMINA_NUM_THREADS") {
  std::string line =
      listing_line(plugins_listing_with_config(R"({"backends": {"onednn": {"threads": 1}}})"), "onednn");
  CHECK(contains(line, " yes "));
  CHECK(contains(line, ", 1 OpenMP thread "));
  line = listing_line(
      plugins_listing_with_config(R"({"backends": {"onednn": {"threads": 1}}})", "LAMINA_NUM_THREADS=3"),
      "onednn");
  CHECK(contains(line, ", 3 OpenMP threads"));  // the environment wins
  line = listing_line(plugins_listing_with_config(R"({"device": 2})"), "onednn");
  CHECK(contains(line, " yes "));  // the top-level device is for the backends that have several
  line = listing_line(plugins_listing_with_config(R"({"backends": {"onednn": {"threads": 0}}})"), "onednn");
  CHECK(contains(line, " no "));
  CHECK(contains(line, "'threads' must be a thread count (1 to 1024), got 0"));
  line = listing_line(plugins_listing_with_config("{}", "LAMINA_NUM_THREADS=many"), "onednn");
  CHECK(contains(line, "LAMINA_NUM_THREADS='many' is not a thread count (1 to 1024)"));
}

TEST_CASE("the onednn backend sizes its team to the cores left by other processes unless a count is set") {
  // What the team takes: the cores other processes kept busy are the machine's busy cores less this
  // process's own; the team gets the rest, rounded, at least one.
  CHECK(lamina::onednn::threads_for_load(2.0, 2.0, 2) == 2);   // quiet: all ours
  CHECK(lamina::onednn::threads_for_load(2.0, 1.33, 2) == 1);  // a busy loop beside a team of two
  CHECK(lamina::onednn::threads_for_load(2.0, 1.0, 2) == 1);   // ... and beside a team of one
  CHECK(lamina::onednn::threads_for_load(1.0, 1.0, 2) == 2);   // the loop has ended
  CHECK(lamina::onednn::threads_for_load(2.0, 0.0, 2) == 1);   // never fewer than one
  CHECK(lamina::onednn::threads_for_load(6.3, 2.2, 8) == 4);   // 4.1 cores held elsewhere
  CHECK(lamina::onednn::threads_for_load(0.5, 0.9, 4) == 4);   // tick rounding: own > busy

  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) test::skip("one CPU: there is no team to size");
  std::string line = listing_line(plugins_listing_with_config("{}", "-u OMP_NUM_THREADS"), "onednn");
  CHECK(contains(line, "OpenMP threads, fewer while other processes hold cores"));
  // a count anywhere fixes the team, for bit-for-bit repeatable sums
  for (const char* environment : {"OMP_NUM_THREADS=2", "-u OMP_NUM_THREADS LAMINA_NUM_THREADS=2"}) {
    line = listing_line(plugins_listing_with_config("{}", environment), "onednn");
    CHECK(contains(line, "2 OpenMP threads (score"));
  }
  line = listing_line(
      plugins_listing_with_config(R"({"backends": {"onednn": {"threads": 2}}})", "-u OMP_NUM_THREADS"),
      "onednn");
  CHECK(contains(line, "2 OpenMP threads (score"));
}

TEST_CASE("the onednn backend takes its Winograd setting from backends.onednn") {
  std::string line =
      listing_line(plugins_listing_with_config(R"({"backends": {"onednn": {"winograd": "off"}}})"), "onednn");
  CHECK(contains(line, " yes "));
  line = listing_line(plugins_listing_with_config(R"({"backends": {"onednn": {"winograd": "sometimes"}}})"),
                      "onednn");
  CHECK(contains(line, " no "));
  CHECK(contains(line, "'winograd' is 'sometimes'; use one of 'auto', 'on', 'off'"));
}

TEST_CASE("LAMINA_DEVICE overrides the configuration's device for the opencl backend") {
  skip_unless_opencl_is_usable();
  std::string line = listing_line(
      plugins_listing_with_config(R"({"backends": {"opencl": {"device": 7}}})", "LAMINA_DEVICE=0"), "opencl");
  CHECK(contains(line, " yes "));
  line = listing_line(
      plugins_listing_with_config(R"({"backends": {"opencl": {"device": 0}}})", "LAMINA_DEVICE=9"), "opencl");
  CHECK(contains(line, "LAMINA_DEVICE=9 asks for device 9"));
}

TEST_CASE(
    "a misspelt or mistyped backend setting makes that backend unusable with the key and the file named") {
  skip_unless_opencl_is_usable();
  std::string listing = plugins_listing_with_config(R"({"backends": {"opencl": {"devcie": 0}}})");
  std::string line = listing_line(listing, "opencl");
  CHECK(contains(line, "refused its settings {\"devcie\":0} ('backends.opencl' in "));
  CHECK(contains(line, "unknown key 'devcie' (known: 'platform', 'device')"));
  CHECK(contains(listing_line(listing, "reference"), " yes "));  // the others are untouched

  line =
      listing_line(plugins_listing_with_config(R"({"backends": {"opencl": {"device": "gpu"}}})"), "opencl");
  CHECK(contains(line, "'device' must be an integer, got \"gpu\""));
  line = listing_line(plugins_listing_with_config(R"({"backends": {"opencl": 3}})"), "opencl");
  CHECK(contains(line, "'backends.opencl' must be an object of settings"));
}

TEST_CASE("settings for a backend that takes none are reported as ignored") {
  std::string listing = plugins_listing_with_config(R"({"backends": {"reference": {"device": 1}}})");
  CHECK(contains(listing, "'backends.reference' in "));
  CHECK(contains(listing, "the reference plugin takes no settings; they are ignored"));
  CHECK(contains(listing_line(listing, "reference"), " yes "));
}
