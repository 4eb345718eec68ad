// tiny-dnn peer of bench/torch_seed.py: the two seed workloads, printing the same "key: value" lines
// (bench/run.py parses every peer alike).
//
//   tinydnn_bench cnn [--data DIR] [--samples N] [--batch B] [--epochs E] [--latency K]
//                     [--opt adadelta|rmsprop] [--lr LR] [--rho R]
//   tinydnn_bench mlp [--epochs E]
//
// cnn: conv 5x5x32 valid + relu, conv 5x5x32 valid + relu, maxpool 2x2, dense 3200->128 + relu,
//      dense 128->10 + softmax, multiclass cross-entropy; first N Fashion-MNIST training images
//      (pixels / 255, no padding). Per epoch: training samples/s (mini-batches in a fresh random
//      order each epoch), then inference samples/s and accuracy on the 10,000 test images in
//      batches of 1000; with --latency K, the median time of K single-image predictions.
// mlp: dense 2->100 sigmoid, 100->100 sigmoid, 100->1 sigmoid, MSE, plain SGD lr 0.01 (tiny-dnn's
//      gradient_descent), batch 16, 20,000 points x ~ N(0, 2^2) per coordinate, label 1 if
//      |x|^2 < 4; 5 epochs unless told. Prints training steps/s.
// Both print run_peak_rss_mb, the peak resident memory of training and inference (data loading
// excluded), as torch_seed.py and lamina_bench do.
//
// tiny-dnn 1.0.0a3 has no Adadelta (built in: adagrad, RMSprop, adam, gradient_descent, momentum).
// `--opt adadelta` (default) uses the Adadelta update defined below on tiny-dnn's public
// optimizer interface (tiny_dnn::stateful_optimizer, like its own optimizers); `--opt rmsprop` uses
// the built-in RMSprop, the closest built-in.
//
// Weights and biases are initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (tiny-dnn's lecun init), the
// same distribution as PyTorch's default Linear/Conv2d init; tiny-dnn's own default is xavier
// weights and zero biases.
//
// Threads: by default tiny-dnn splits each parallel loop (over the samples of a mini-batch, over the
// weights in an optimizer update) into std::thread::hardware_concurrency() std::async tasks, new
// threads each time; CNN_USE_OMP / CNN_USE_TBB switch to OpenMP / TBB and CNN_SINGLE_THREAD to one
// thread, all at compile time; there is no run-time thread count. Build with -DCNN_USE_AVX to get
// its AVX kernels (its own CMake turns USE_AVX on by default).
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tiny_dnn/tiny_dnn.h"
#ifdef CNN_USE_OMP
#include <omp.h>
#endif

using tiny_dnn::float_t;
using tiny_dnn::label_t;
using tiny_dnn::vec_t;

namespace {

// Adadelta (Zeiler 2012) on tiny-dnn's optimizer interface. tiny-dnn hands update() the batch-mean
// gradient of one weight vector.
struct adadelta : public tiny_dnn::stateful_optimizer<2> {
  float_t lr = 1, rho = 0.9f, eps = 1e-6f;
  void update(const vec_t& dW, vec_t& W, bool parallelize) override {
    vec_t& Eg = get<0>(W);   // running mean of g^2
    vec_t& Edx = get<1>(W);  // running mean of update^2
    tiny_dnn::for_i(parallelize, static_cast<int>(W.size()), [&](int i) {
      Eg[i] = rho * Eg[i] + (1 - rho) * dW[i] * dW[i];
      const float_t d = std::sqrt(Edx[i] + eps) / std::sqrt(Eg[i] + eps) * dW[i];
      Edx[i] = rho * Edx[i] + (1 - rho) * d * d;
      W[i] -= lr * d;
    });
  }
  // network::fit() calls reset() at its start; we call fit() once per epoch (to reshuffle), and
  // Adadelta's running averages must survive across epochs as in PyTorch.
  void reset() override {}
};

std::vector<uint8_t> gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

std::vector<vec_t> load_images(const std::string& path, size_t limit) {
  auto raw = gunzip(path);
  if (raw.size() < 16 || be32(&raw[0]) != 0x803) throw std::runtime_error("not an IDX image file: " + path);
  const size_t n = std::min<size_t>(limit, be32(&raw[4])), px = size_t(be32(&raw[8])) * be32(&raw[12]);
  std::vector<vec_t> X(n, vec_t(px));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < px; ++j) X[i][j] = float_t(raw[16 + i * px + j]) / float_t(255);
  return X;
}

std::vector<label_t> load_labels(const std::string& path, size_t limit) {
  auto raw = gunzip(path);
  if (raw.size() < 8 || be32(&raw[0]) != 0x801) throw std::runtime_error("not an IDX label file: " + path);
  const size_t n = std::min<size_t>(limit, be32(&raw[4]));
  return std::vector<label_t>(raw.begin() + 8, raw.begin() + 8 + n);
}

// Peak resident memory from here on: Linux restarts the high-water mark (VmHWM) when 5 is written to
// /proc/self/clear_refs.
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

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// How this build of tiny-dnn runs its parallel_for (chosen at compile time; no run-time setting).
std::string threading() {
#if defined(CNN_USE_TBB)
  return "TBB";
#elif defined(CNN_USE_OMP)
  return "OpenMP, omp_get_max_threads()=" + std::to_string(omp_get_max_threads());
#elif defined(CNN_SINGLE_THREAD)
  return "1 thread (CNN_SINGLE_THREAD)";
#else
  return "std::async, " + std::to_string(std::thread::hardware_concurrency()) +
         " threads (hardware_concurrency)";
#endif
}

struct Args {
  std::string data = "/usr/share/datasets/fashion-mnist", opt = "adadelta";
  size_t samples = 60000, batch = 32;
  int epochs = 0, latency = 0;  // epochs 0: the mode's default (cnn 1, mlp 5)
  double lr = -1, rho = 0.9;    // lr -1: the optimizer's default (adadelta 1.0, rmsprop tiny-dnn's 1e-4)
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--data")
      a.data = v;
    else if (k == "--samples")
      a.samples = std::stoul(v);
    else if (k == "--batch")
      a.batch = std::stoul(v);
    else if (k == "--epochs")
      a.epochs = std::stoi(v);
    else if (k == "--latency")
      a.latency = std::stoi(v);
    else if (k == "--opt")
      a.opt = v;
    else if (k == "--lr")
      a.lr = std::stod(v);
    else if (k == "--rho")
      a.rho = std::stod(v);
    else
      throw std::runtime_error("unknown option " + k);
  }
  return a;
}

template <typename Opt>
int train_cnn(const Args& a, Opt& opt, const std::string& opt_desc) {
  using namespace tiny_dnn;
  using namespace tiny_dnn::activation;
  set_random_seed(0);
  auto Xtr = load_images(a.data + "/train-images-idx3-ubyte.gz", a.samples);
  auto ytr = load_labels(a.data + "/train-labels-idx1-ubyte.gz", a.samples);
  auto Xte = load_images(a.data + "/t10k-images-idx3-ubyte.gz", size_t(-1));
  auto yte = load_labels(a.data + "/t10k-labels-idx1-ubyte.gz", size_t(-1));
  const core::backend_t be = core::default_engine();

  network<sequential> net;
  net << convolutional_layer<relu>(28, 28, 5, 1, 32, padding::valid, true, 1, 1, be)
      << convolutional_layer<relu>(24, 24, 5, 32, 32, padding::valid, true, 1, 1, be)
      << max_pooling_layer<identity>(20, 20, 32, 2, be) << fully_connected_layer<relu>(3200, 128, true, be)
      << fully_connected_layer<softmax>(128, 10, true, be);
  net.weight_init(weight_init::lecun()).bias_init(weight_init::lecun());
  net.init_weight();

  const size_t n = Xtr.size(), nte = Xte.size();
  std::mt19937 rng(0);
  std::vector<size_t> perm(n);
  std::vector<vec_t> Xs(n);
  std::vector<label_t> ys(n);
  // test set as tiny-dnn's [sample][channel] tensors, in chunks of 1000
  std::vector<std::vector<tensor_t>> te_chunks;
  for (size_t i = 0; i < nte; i += 1000) {
    std::vector<tensor_t> c;
    for (size_t j = i; j < std::min(i + 1000, nte); ++j) c.push_back(tensor_t{Xte[j]});
    te_chunks.push_back(std::move(c));
  }

  std::printf("tiny_dnn: 1.0.0a3 engine: %s threads: %s; optimizer: %s\n",
              be == core::backend_t::avx ? "avx" : "internal", threading().c_str(), opt_desc.c_str());
  reset_peak_memory();
  for (int ep = 0; ep < std::max(a.epochs, 1); ++ep) {
    const double t0 = now();
    std::iota(perm.begin(), perm.end(), size_t(0));
    std::shuffle(perm.begin(), perm.end(), rng);
    for (size_t i = 0; i < n; ++i) {
      Xs[i] = Xtr[perm[i]];
      ys[i] = ytr[perm[i]];
    }
    // one epoch; train() converts the data to its tensors, then trains mini-batch by mini-batch
    net.train<cross_entropy_multiclass>(opt, Xs, ys, a.batch, 1);
    const double dt = now() - t0;
    // tiny-dnn's train() does not report the loss; as a sanity value we print the mean loss on the
    // first 1000 training images after the epoch (PyTorch prints the running mean during the epoch).
    const double t1 = now();
    size_t correct = 0, k = 0;
    for (auto& c : te_chunks) {
      auto out = net.predict(c);  // [sample][0] = 10 softmax outputs
      for (auto& o : out) {
        const auto& v = o[0];
        const label_t p = static_cast<label_t>(std::max_element(v.begin(), v.end()) - v.begin());
        correct += (p == yte[k++]);
      }
    }
    const double di = now() - t1;
    double loss = 0;
    {
      const size_t m = std::min<size_t>(1000, n);
      std::vector<tensor_t> c;
      for (size_t i = 0; i < m; ++i) c.push_back(tensor_t{Xtr[i]});
      auto out = net.predict(c);
      for (size_t i = 0; i < m; ++i) loss += -std::log(std::max<double>(out[i][0][ytr[i]], 1e-30));
      loss /= m;
    }
    // loss: on the first 1000 training images after the epoch (see above)
    std::printf(
        "epoch: %d train_s: %.3f train_samples_per_s: %.1f loss: %.4f test_acc: %.4f infer_samples_per_s: "
        "%.1f\n",
        ep + 1, dt, n / dt, loss, double(correct) / nte, nte / di);
    std::fflush(stdout);
  }
  std::printf("run_peak_rss_mb: %.1f\n", peak_memory_mb());
  if (a.latency > 0) {  // as torch_seed.py: one image at a time, the first 5 calls not counted
    std::vector<double> times;
    for (int i = 0; i < a.latency + 5; ++i) {
      const double t = now();
      const vec_t out = net.predict(Xte[size_t(i % 1000)]);
      volatile auto top = std::max_element(out.begin(), out.end()) - out.begin();
      (void)top;
      if (i >= 5) times.push_back(now() - t);
    }
    std::sort(times.begin(), times.end());
    std::printf("latency_ms: %.4f\n", times[times.size() / 2] * 1e3);
  }
  return 0;
}

int run_cnn(const Args& a) {
  char desc[128];
  if (a.opt == "adadelta") {
    adadelta opt;
    if (a.lr > 0) opt.lr = float_t(a.lr);
    opt.rho = float_t(a.rho);
    std::snprintf(desc, sizeof desc, "adadelta (ours) lr %g rho %g eps %g", double(opt.lr), double(opt.rho),
                  double(opt.eps));
    return train_cnn(a, opt, desc);
  }
  if (a.opt == "rmsprop") {
    tiny_dnn::RMSprop opt;
    if (a.lr > 0) opt.alpha = float_t(a.lr);
    std::snprintf(desc, sizeof desc, "RMSprop (built-in) alpha %g mu %g", double(opt.alpha), double(opt.mu));
    return train_cnn(a, opt, desc);
  }
  throw std::runtime_error("unknown --opt " + a.opt);
}

int run_mlp(const Args& a) {
  using namespace tiny_dnn;
  using namespace tiny_dnn::activation;
  set_random_seed(0);
  const size_t n = 20000;
  std::mt19937 rng(0);
  std::normal_distribution<float> N01(0.f, 1.f);
  std::vector<vec_t> X(n, vec_t(2)), Y(n, vec_t(1));
  for (size_t i = 0; i < n; ++i) {
    X[i][0] = 2 * N01(rng);
    X[i][1] = 2 * N01(rng);
    Y[i][0] = (X[i][0] * X[i][0] + X[i][1] * X[i][1] < 4) ? 1.f : 0.f;
  }
  network<sequential> m;
  m << fully_connected_layer<sigmoid>(2, 100) << fully_connected_layer<sigmoid>(100, 100)
    << fully_connected_layer<sigmoid>(100, 1);
  m.weight_init(weight_init::lecun()).bias_init(weight_init::lecun());
  m.init_weight();
  gradient_descent opt;
  opt.alpha = float_t(0.01);
  std::vector<size_t> perm(n);
  std::vector<vec_t> Xs(n), Ys(n);
  const size_t steps_per_epoch = (n + 15) / 16;
  const int epochs = a.epochs > 0 ? a.epochs : 5;
  std::printf("tiny_dnn: 1.0.0a3 threads: %s\n", threading().c_str());
  size_t steps = 0;
  reset_peak_memory();
  const double t0 = now();
  for (int ep = 0; ep < epochs; ++ep) {
    std::iota(perm.begin(), perm.end(), size_t(0));
    std::shuffle(perm.begin(), perm.end(), rng);
    for (size_t i = 0; i < n; ++i) {
      Xs[i] = X[perm[i]];
      Ys[i] = Y[perm[i]];
    }
    m.fit<mse>(opt, Xs, Ys, 16, 1);
    steps += steps_per_epoch;
  }
  const double dt = now() - t0;
  // final loss: MSE on the last mini-batch of the last epoch, after training (the Python script
  // prints it before the last update)
  double l = 0;
  for (size_t i = n - 16; i < n; ++i) {
    const double d = m.predict(Xs[i])[0] - Ys[i][0];
    l += d * d;
  }
  std::printf("steps: %zu seconds: %.3f steps_per_s: %.1f loss: %.4f\n", steps, dt, steps / dt, l / 16);
  std::printf("run_peak_rss_mb: %.1f\n", peak_memory_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: %s cnn|mlp [options]\n", argv[0]);
      return 2;
    }
    const std::string mode = argv[1];
    Args a = parse(argc, argv);
    if (mode == "cnn") return run_cnn(a);
    if (mode == "mlp") return run_mlp(a);
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
