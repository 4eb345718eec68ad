// Replayed training steps (core/src/replay.hpp): once two steps launched the same kernels, fit runs
// the recorded kernels directly, and the run is the one without replay, bit for bit.
#include "support.hpp"

#include "../core/src/replay.hpp"

#include <cstdlib>
#include <filesystem>
#include <random>

using namespace lamina;
using namespace lamina::layers;

namespace {

std::pair<Tensor, Tensor> points(int n, int classes) {
  std::mt19937_64 g(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x, y;
  for (int i = 0; i < n; ++i) {
    float a = normal(g), b = normal(g);
    x.push_back(a);
    x.push_back(b);
    int c = (a > 0) + (b > 0 && classes > 2);
    if (classes == 1)
      y.push_back(a * a + b * b < 1.0f ? 1.0f : 0.0f);
    else
      for (int k = 0; k < classes; ++k) y.push_back(k == c ? 1.0f : 0.0f);
  }
  return {Tensor::from_vector(x, {n, 2}), Tensor::from_vector(y, {n, classes})};
}

struct Run {
  std::vector<std::vector<float>> weights;
  std::map<std::string, std::vector<double>> history;
  int64_t replayed = 0;
  int64_t graphs = 0;  // replayed steps launched as one graph
};

// Trains a fresh model from `make` with replay on or off; every weight and the history.
template <class Make>
Run train(bool replay, Make make, const Tensor& x, const Tensor& y, int epochs, bool shuffle = true) {
  if (replay)
    unsetenv("LAMINA_STEP_REPLAY");
  else
    setenv("LAMINA_STEP_REPLAY", "0", 1);
  set_random_seed(21);
  Sequential model = make();
  int64_t before = replayed_steps(), graphs_before = graph_steps();
  History h = model.fit(x, y, {.epochs = epochs, .batch_size = 16, .verbose = 0, .shuffle = shuffle});
  Run r;
  r.replayed = replayed_steps() - before;
  r.graphs = graph_steps() - graphs_before;
  r.weights = test::weights_of(model);
  r.history = h.history;
  unsetenv("LAMINA_STEP_REPLAY");
  return r;
}

template <class Make>
void replay_matches(const std::string& backend, Make make, const Tensor& x, const Tensor& y,
                    bool expect_replay) {
  test::use_backend_or_skip(backend);
  Run normal = train(false, make, x, y, 3);
  Run replayed = train(true, make, x, y, 3);
  CHECK(normal.replayed == 0);
  if (expect_replay)
    CHECK(replayed.replayed > 0);
  else
    CHECK(replayed.replayed == 0);
  CHECK(replayed.history == normal.history);
  REQUIRE(replayed.weights.size() == normal.weights.size());
  for (size_t i = 0; i < normal.weights.size(); ++i) CHECK(replayed.weights[i] == normal.weights[i]);
  // The cudnn backend records CUDA graphs when LAMINA_CUDNN_GRAPHS=1 (tests/gpu/run.sh runs it so):
  // then every replayed step is one graph launch.
  const char* graphs = std::getenv("LAMINA_CUDNN_GRAPHS");
  if (backend == "cudnn" && graphs && std::string(graphs) == "1") CHECK(replayed.graphs == replayed.replayed);
}

Sequential mlp(const std::string& loss, const std::string& optimizer, int outputs,
               const std::string& activation) {
  Sequential m;
  m.add(Dense(100, {.input_dim = 2, .activation = "sigmoid"}));
  m.add(Dense(100, {.activation = "relu"}));
  m.add(Dense(outputs, {.activation = activation}));
  m.compile({.loss = loss, .optimizer = optimizer, .metrics = {"accuracy"}});
  return m;
}

}  // namespace

// 200 rows at batch 16: 12 full batches and a short one each epoch, which runs as a normal step.
TEST_CASE("replayed steps train the seed MLP (MSE, SGD) exactly as normal steps, on every backend") {
  auto [x, y] = points(200, 1);
  for (const std::string& backend : test::configured_backends()) {
    if (!test::backend_usable(backend)) {
      MESSAGE("backend '" << backend << "' cannot run here");
      continue;
    }
    CAPTURE(backend);
    replay_matches(
        backend, [] { return mlp("mean_squared_error", "sgd", 1, "sigmoid"); }, x, y, true);
  }
}

TEST_CASE("replayed steps train a softmax classifier (cross-entropy, Adam) exactly as normal steps") {
  auto [x, y] = points(200, 3);
  for (const char* backend : {"reference", "onednn"}) {
    CAPTURE(backend);
    replay_matches(
        backend, [] { return mlp("categorical_crossentropy", "adam", 3, "softmax"); }, x, y, true);
  }
}

namespace {

// 64 random 8x8 images in 4 classes, and a CNN for them: Conv2D, MaxPooling2D, Dense softmax.
std::pair<Tensor, Tensor> images() {
  std::vector<float> labels;
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 4; ++k) labels.push_back(k == i % 4 ? 1.0f : 0.0f);
  return {test::random_tensor({64, 8, 8, 1}, 5, 0.0f, 1.0f), Tensor::from_vector(labels, {64, 4})};
}
Sequential small_cnn() {
  Sequential m;
  m.add(Conv2D(4, {3, 3}, {.activation = "relu", .input_shape = {8, 8, 1}}));
  m.add(MaxPooling2D({2, 2}));
  m.add(Flatten());
  m.add(Dense(4, {.activation = "softmax"}));
  m.compile({.loss = "categorical_crossentropy", .optimizer = "adadelta", .metrics = {"accuracy"}});
  return m;
}

}  // namespace

TEST_CASE("replayed steps train a small CNN exactly as normal steps, on every optimised backend") {
  auto [x, y] = images();
  for (const std::string& backend : test::configured_backends()) {
    if (backend == "reference") continue;  // slow here, and its MLP case above covers it
    if (!test::backend_usable(backend)) {
      MESSAGE("backend '" << backend << "' cannot run here");
      continue;
    }
    CAPTURE(backend);
    replay_matches(backend, small_cnn, x, y, true);
  }
}

TEST_CASE(
    "replayed steps train dilated, grouped, depthwise and separable convolutions exactly as normal steps") {
  test::use_backend_or_skip("onednn");
  Tensor x = test::random_tensor({64, 8, 8, 2}, 6, 0.0f, 1.0f);
  std::vector<float> labels;
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 4; ++k) labels.push_back(k == i % 4 ? 1.0f : 0.0f);
  Tensor y = Tensor::from_vector(labels, {64, 4});
  // each step's kernels carry the dilation and groups attributes that replay must call them with
  auto cnn = [] {
    Sequential m;
    m.add(
        Conv2D(4, {3, 3},
               {.padding = "same", .dilation_rate = {2, 2}, .activation = "relu", .input_shape = {8, 8, 2}}));
    m.add(Conv2D(4, {3, 3}, {.groups = 2, .activation = "relu"}));
    m.add(DepthwiseConv2D({3, 3}, {.depth_multiplier = 2, .activation = "relu"}));
    m.add(SeparableConv2D(4, {2, 2}, {.activation = "relu"}));
    m.add(Flatten());
    m.add(Dense(4, {.activation = "softmax"}));
    m.compile({.loss = "categorical_crossentropy", .optimizer = "adam", .metrics = {"accuracy"}});
    return m;
  };
  replay_matches("onednn", cnn, x, y, true);
}

TEST_CASE("steps that draw random numbers (dropout) are not replayed, and train as before") {
  auto [x, y] = points(200, 1);
  auto with_dropout = [] {
    Sequential m;
    m.add(Dense(32, {.input_dim = 2, .activation = "relu"}));
    m.add(Dropout(0.3));
    m.add(Dense(1, {.activation = "sigmoid"}));
    m.compile("mean_squared_error", "sgd");
    return m;
  };
  replay_matches("onednn", with_dropout, x, y, false);
}

// assign through the backend's copy kernel is a recorded launch: a layer that overwrites its own
// weights in training (the RBM's contrastive divergence, BatchNormalization's moving statistics) is
// replayed, and its weights end as without replay.
TEST_CASE("steps of a layer that overwrites its own weights in training are replayed, and train as before") {
  auto [x, y] = points(200, 1);
  auto with_rbm = [] {
    Sequential m;
    m.add(LayerSpec{"RBM", {{"units", 8}, {"pretrain", true}, {"input_shape", {2}}}});
    m.add(Dense(1, {.activation = "sigmoid"}));
    m.compile("mean_squared_error", "sgd");
    return m;
  };
  for (const char* backend : {"reference", "onednn"}) {
    CAPTURE(backend);
    replay_matches(backend, with_rbm, x, y, true);
  }
}

TEST_CASE("steps with sparse labels are replayed: the labels become one-hot rows before the step") {
  auto [x, y3] = points(200, 3);
  std::vector<float> onehot = y3.to_vector(), labels;
  for (size_t i = 0; i < onehot.size(); i += 3)
    labels.push_back(onehot[i + 1] > 0 ? 1.0f : onehot[i + 2] > 0 ? 2.0f : 0.0f);
  Tensor y = Tensor::from_vector(labels, {200, 1});
  replay_matches(
      "onednn", [] { return mlp("sparse_categorical_crossentropy", "sgd", 3, "softmax"); }, x, y, true);
}

// Without shuffling the batches are views of the caller's tensors: replay reads them in place and
// never writes them.
TEST_CASE("replay reads batches that are views of the caller's data without changing the data") {
  test::use_backend_or_skip("onednn");
  auto [x, y] = points(200, 1);
  const std::vector<float> x_before = x.to_vector(), y_before = y.to_vector();
  auto make = [] { return mlp("mean_squared_error", "sgd", 1, "sigmoid"); };
  Run normal = train(false, make, x, y, 3, false);
  Run replayed = train(true, make, x, y, 3, false);
  CHECK(replayed.replayed > 0);
  CHECK(x.to_vector() == x_before);
  CHECK(y.to_vector() == y_before);
  CHECK(replayed.history == normal.history);
  CHECK(replayed.weights == normal.weights);
}

// A backend that records graphs (the capture functions of lamina_backend, ABI 1.4) gets each
// replayed step as one graph launch: captured on the first replayed step, on batch buffers of its
// own that each step's batch is copied into. tests/fixtures/graph_backend.cpp records the reference
// kernels into host-side graphs, as the cudnn backend records CUDA graphs.
TEST_CASE(
    "on a backend that records graphs, replayed steps run as one graph and train exactly as normal steps") {
  add_plugin_path((std::filesystem::path(LAMINA_FIXTURE_DIR) / "graphs").string());
  test::use_backend_or_skip("graphs");
  auto [x, y] = points(200, 3);
  auto make = [] { return mlp("categorical_crossentropy", "adam", 3, "softmax"); };
  Run normal = train(false, make, x, y, 3);
  Run graphs = train(true, make, x, y, 3);
  CHECK(graphs.replayed > 0);
  CHECK(graphs.graphs == graphs.replayed);
  CHECK(graphs.history == normal.history);
  CHECK(graphs.weights == normal.weights);

  setenv("LAMINA_STEP_GRAPHS", "0", 1);  // replay kernel by kernel
  Run kernels = train(true, make, x, y, 3);
  unsetenv("LAMINA_STEP_GRAPHS");
  CHECK(kernels.replayed == graphs.replayed);
  CHECK(kernels.graphs == 0);
  CHECK(kernels.weights == normal.weights);

  // A backend that cannot record the step (CUDA refuses a capture whose kernels synchronise, for
  // one): the replayed steps run kernel by kernel and train the same.
  setenv("LAMINA_FIXTURE_REFUSE_GRAPHS", "1", 1);
  Run refused = train(true, make, x, y, 3);
  unsetenv("LAMINA_FIXTURE_REFUSE_GRAPHS");
  CHECK(refused.replayed == graphs.replayed);
  CHECK(refused.graphs == 0);
  CHECK(refused.history == normal.history);
  CHECK(refused.weights == normal.weights);
}

// On a GPU (tests/gpu/run.sh runs the cudnn test cases, then this one again with
// LAMINA_CUDNN_GRAPHS=1, where every replayed step must be one CUDA graph launch).
TEST_CASE(
    "replayed steps train an MLP and a small CNN on cudnn exactly as normal steps (CUDA graphs when "
    "enabled)") {
  test::use_backend_or_skip("cudnn");
  auto [x, y] = points(200, 3);
  replay_matches(
      "cudnn", [] { return mlp("categorical_crossentropy", "adam", 3, "softmax"); }, x, y, true);
  auto [images_x, images_y] = images();
  replay_matches("cudnn", small_cnn, images_x, images_y, true);
}
