// The seed workloads for the benchmark: the same models, data, optimizers and batch sizes as the
// peers (bench/torch_seed.py, bench/keras_seed.py, bench/peers/), so the numbers compare like for like.
//
//   lamina_bench cnn [--samples N] [--batch B] [--epochs E] [--backend NAME] [--latency K]
//       the seed CNN on Fashion-MNIST: per epoch, training samples/s, then inference samples/s over
//       the 10,000 test images in batches of 1000 and test accuracy; with --latency K, the median
//       time of K single-image predictions.
//   lamina_bench cnn_functional [...]
//       the same seed CNN written with the functional API (Input, layer calls, Model): the graph
//       path against the chain, same run.
//   lamina_bench residual [--config FILE] [...]
//       the residual network of examples/residual_cnn.json (BatchNormalization, two residual
//       blocks, Adam), its model and optimizer read from that file; give --batch 64, its batch size.
//       At the end, inference samples/s with BatchNormalization folded into the convolutions and
//       not (LAMINA_FOLD_BATCH_NORM=0), alternated, medians of 7 each.
//   lamina_bench mlp [--epochs E] [--backend NAME]
//       the seed 2-layer MLP (batch 16, SGD, MSE) on 20,000 2-D points, 5 epochs: training steps/s.
//
// Every line is "key: value" pairs that bench/run.py parses; run_peak_rss_mb is the peak resident
// memory of the training and inference above it, data loading excluded.
#include <lamina/lamina.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <iostream>
#include <random>
#include <string>
#include <vector>

using namespace lamina;
using namespace lamina::layers;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Args {
  std::string mode;
  int64_t samples = 60000, batch = 32;
  int epochs = 0, latency = 0;  // epochs 0: the mode's default (cnn 1, mlp 5)
  std::string backend, data = "/usr/share/datasets/fashion-mnist";
  std::string config = LAMINA_SOURCE_DIR "/examples/residual_cnn.json";
};

Args parse(int argc, char** argv) {
  if (argc < 2)
    throw Error(
        "usage: lamina_bench cnn|cnn_functional|residual|mlp [--samples N] [--batch B] [--epochs E] [--backend NAME] "
        "[--latency K] [--config FILE]");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) throw Error("option " + k + " needs a value");
    std::string v = argv[++i];
    if (k == "--samples")
      a.samples = std::stoll(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--epochs")
      a.epochs = std::stoi(v);
    else if (k == "--latency")
      a.latency = std::stoi(v);
    else if (k == "--backend")
      a.backend = v;
    else if (k == "--data")
      a.data = v;
    else if (k == "--config")
      a.config = v;
    else
      throw Error("unknown option " + k);
  }
  return a;
}

// Peak resident memory from here on: Linux restarts the high-water mark (VmHWM) when 5 is written to
// /proc/self/clear_refs, so the peak of training alone can be read without the data loading before it.
void reset_peak_memory() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}
double peak_memory_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) break;
  std::fclose(f);
  return kb / 1024.0;
}

// Index of the largest value in each row.
std::vector<int64_t> argmax_rows(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  int64_t n = t.dim(0), k = t.size() / std::max<int64_t>(n, 1);
  std::vector<int64_t> out(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i)
    out[size_t(i)] = std::max_element(v.begin() + i * k, v.begin() + (i + 1) * k) - (v.begin() + i * k);
  return out;
}

void run_cnn(const Args& a) {
  Dataset d = datasets::fashion_mnist::load_data(a.data);
  int64_t n = std::min<int64_t>(a.samples, d.train.x.dim(0));
  Tensor x_train = d.train.x.slice(0, n).reshape({-1, 28, 28, 1}) / 255.0f;
  Tensor y_train = to_categorical(d.train.y.slice(0, n), 10);
  Tensor x_test = d.test.x.reshape({-1, 28, 28, 1}) / 255.0f;
  std::vector<float> labels = d.test.y.to_vector();
  d = Dataset{};  // the raw images: only the scaled copies above are used from here on

  boost::json::object residual;  // the training config of examples/residual_cnn.json
  if (a.mode == "residual") {
    std::ifstream in(a.config);
    if (!in) throw Error("cannot read " + a.config + " (give the residual network's config with --config)");
    residual = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
  }
  Model model = [&]() -> Model {
    if (a.mode == "residual") return Model::from_config(residual.at("model"));
    if (a.mode == "cnn_functional") {
      KerasTensor in = Input({28, 28, 1});
      KerasTensor x = Conv2D(32, {5, 5}, {.activation = "relu"})(in);
      x = MaxPooling2D({2, 2})(Conv2D(32, {5, 5}, {.activation = "relu"})(x));
      x = Dense(128, {.activation = "relu"})(Flatten()(x));
      return Model(in, Dense(10, {.activation = "softmax"})(x));
    }
    Sequential seq;
    seq.add(Conv2D(32, {5, 5}, {.activation = "relu", .input_shape = {28, 28, 1}}));
    seq.add(Conv2D(32, {5, 5}, {.activation = "relu"}));
    seq.add(MaxPooling2D({2, 2}));
    seq.add(Flatten());
    seq.add(Dense(128, {.activation = "relu"}));
    seq.add(Dense(10, {.activation = "softmax"}));
    return seq;
  }();
  if (a.mode == "residual") {
    const boost::json::object& optimizer = residual.at("compile").at("optimizer").as_object();
    model.compile({.loss = "categorical_crossentropy",
                   .optimizer = OptimizerSpec(std::string(optimizer.at("class_name").as_string()),
                                              optimizer.at("config").as_object())});
  } else {
    model.compile({.loss = "categorical_crossentropy", .optimizer = "adadelta"});
  }

  reset_peak_memory();
  for (int e = 1; e <= std::max(a.epochs, 1); ++e) {
    auto t0 = Clock::now();
    History h = model.fit(x_train, y_train, {.epochs = 1, .batch_size = a.batch, .verbose = 0});
    double train = since(t0);
    auto t1 = Clock::now();
    Tensor pred = model.predict(x_test, 1000);
    double infer = since(t1);
    std::vector<int64_t> top = argmax_rows(pred);
    int64_t hits = 0;
    for (size_t i = 0; i < top.size(); ++i) hits += top[i] == int64_t(labels[i]);
    std::printf(
        "epoch: %d train_s: %.3f train_samples_per_s: %.1f loss: %.4f test_acc: %.4f infer_samples_per_s: "
        "%.1f\n",
        e, train, double(n) / train, h.history["loss"].back(), double(hits) / double(top.size()),
        double(x_test.dim(0)) / infer);
    std::fflush(stdout);
  }
  std::printf("run_peak_rss_mb: %.1f\n", peak_memory_mb());
  if (a.latency > 0) {
    std::vector<double> times;
    for (int i = 0; i < a.latency + 5; ++i) {
      Tensor one = x_test.slice(i % 1000, i % 1000 + 1);
      auto t = Clock::now();
      Tensor p = model.predict(one, 1);
      (void)p.to_vector();
      if (i >= 5) times.push_back(since(t));  // the first calls build the batch-1 primitives
    }
    std::sort(times.begin(), times.end());
    std::printf("latency_ms: %.4f\n", times[times.size() / 2] * 1e3);
  }
  if (a.mode == "residual") {
    // Inference with BatchNormalization folded into the convolutions and not
    // (LAMINA_FOLD_BATCH_NORM, read on every call), alternated: medians of 7 predictions of each.
    std::vector<double> folded, plain;
    for (int i = 0; i < 14; ++i) {
      const bool fold = i % 2 == 0;
      if (fold)
        unsetenv("LAMINA_FOLD_BATCH_NORM");
      else
        setenv("LAMINA_FOLD_BATCH_NORM", "0", 1);
      auto t = Clock::now();
      (void)model.predict(x_test, 1000).to_vector();
      (fold ? folded : plain).push_back(double(x_test.dim(0)) / since(t));
    }
    unsetenv("LAMINA_FOLD_BATCH_NORM");
    std::sort(folded.begin(), folded.end());
    std::sort(plain.begin(), plain.end());
    std::printf("infer_folded_samples_per_s: %.1f infer_unfolded_samples_per_s: %.1f\n", folded[folded.size() / 2],
                plain[plain.size() / 2]);
  }
}

// 20,000 points x ~ N(0, 2^2) per coordinate, label 1 inside the circle of radius 2 (as the peer).
void run_mlp(const Args& a) {
  const int n = 20000;
  std::mt19937_64 g(0);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(size_t(n) * 2), y(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[size_t(2 * i)] = normal(g);
    x[size_t(2 * i + 1)] = normal(g);
    y[size_t(i)] =
        x[size_t(2 * i)] * x[size_t(2 * i)] + x[size_t(2 * i + 1)] * x[size_t(2 * i + 1)] < 4 ? 1.0f : 0.0f;
  }
  Tensor X = Tensor::from_vector(x, {n, 2}), Y = Tensor::from_vector(y, {n, 1});
  Sequential clf;
  clf.add(Dense(100, {.input_dim = 2, .activation = "sigmoid"}));
  clf.add(Dense(100, {.activation = "sigmoid"}));
  clf.add(Dense(1, {.activation = "sigmoid"}));
  clf.compile("mean_squared_error", OptimizerSpec("SGD", {{"learning_rate", 0.01}}));
  int epochs = a.epochs > 0 ? a.epochs : 5;
  reset_peak_memory();
  auto t0 = Clock::now();
  History h = clf.fit(X, Y, {.epochs = epochs, .batch_size = 16, .verbose = 0});
  double dt = since(t0);
  int64_t steps = int64_t(epochs) * ((n + 15) / 16);
  std::printf("steps: %lld seconds: %.3f steps_per_s: %.1f loss: %.4f\n", static_cast<long long>(steps), dt,
              double(steps) / dt, h.history["loss"].back());
  std::printf("run_peak_rss_mb: %.1f\n", peak_memory_mb());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (!a.backend.empty()) set_backend(a.backend);
    std::printf("backend: %s\n", backend().c_str());
    if (a.mode == "cnn" || a.mode == "cnn_functional" || a.mode == "residual")
      run_cnn(a);
    else if (a.mode == "mlp")
      run_mlp(a);
    else
      throw Error("unknown mode '" + a.mode + "' (cnn, cnn_functional, residual or mlp)");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
