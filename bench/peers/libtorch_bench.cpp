// LibTorch (PyTorch C++ API) peer of bench/torch_seed.py: the two seed workloads, written op-for-op
// in C++, printing the same "key: value" lines (bench/run.py parses every peer alike).
//
//   libtorch_bench cnn [--data DIR] [--samples N] [--batch B] [--epochs E] [--threads T] [--latency K]
//                      [--lr LR] [--rho R]
//   libtorch_bench mlp [--epochs E] [--threads T]
//
// cnn: Conv2d(1,32,5) ReLU Conv2d(32,32,5) ReLU MaxPool2d(2) Flatten Linear(3200,128) ReLU Linear(128,10),
//      softmax cross-entropy, Adadelta, on the first N Fashion-MNIST training images (pixels / 255).
//      Per epoch: training samples/s (shuffled mini-batches), then inference samples/s and accuracy
//      on the 10,000 test images in batches of 1000; with --latency K, the median time of K
//      single-image predictions.
// mlp: Linear(2,100) Sigmoid Linear(100,100) Sigmoid Linear(100,1) Sigmoid, MSE, SGD lr 0.01,
//      batch 16, 20,000 points x ~ N(0, 2^2) per coordinate, label 1 if |x|^2 < 4; 5 epochs unless
//      told. Prints training steps/s.
// Both print run_peak_rss_mb, the peak resident memory of training and inference (data loading
// excluded), as torch_seed.py and lamina_bench do.
//
// LibTorch 1.13's C++ frontend has no Adadelta (torch::optim offers Adagrad, Adam, AdamW, LBFGS,
// RMSprop, SGD), so this file defines one on the public torch::optim::Optimizer interface, with the
// per-parameter update of the Adadelta paper (Zeiler 2012) in the same order of tensor ops and the
// same defaults (rho 0.9, eps 1e-6) as Python torch.optim.Adadelta's default (non-foreach) CPU path.
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------- Adadelta on torch::optim::Optimizer
struct AdadeltaOptions : public torch::optim::OptimizerCloneableOptions<AdadeltaOptions> {
  AdadeltaOptions(double lr = 1.0) : lr_(lr) {}
  TORCH_ARG(double, lr) = 1.0;
  TORCH_ARG(double, rho) = 0.9;
  TORCH_ARG(double, eps) = 1e-6;
  double get_lr() const override { return lr(); }
  void set_lr(const double v) override { lr(v); }
};

struct AdadeltaParamState : public torch::optim::OptimizerCloneableParamState<AdadeltaParamState> {
  TORCH_ARG(torch::Tensor, square_avg);
  TORCH_ARG(torch::Tensor, acc_delta);
};

class Adadelta : public torch::optim::Optimizer {
 public:
  Adadelta(std::vector<torch::Tensor> params, AdadeltaOptions defaults = {})
      : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                                std::make_unique<AdadeltaOptions>(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
      torch::AutoGradMode enable(true);
      loss = closure();
    }
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const AdadeltaOptions&>(group.options());
      const double lr = o.lr(), rho = o.rho(), eps = o.eps();
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        const torch::Tensor& grad = p.grad();
        const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
        auto it = state_.find(key);
        if (it == state_.end()) {
          auto s = std::make_unique<AdadeltaParamState>();
          s->square_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
          s->acc_delta(torch::zeros_like(p, at::MemoryFormat::Preserve));
          it = state_.emplace(key, std::move(s)).first;
        }
        auto& s = static_cast<AdadeltaParamState&>(*it->second);
        torch::Tensor& sq = s.square_avg();
        torch::Tensor& acc = s.acc_delta();
        sq.mul_(rho).addcmul_(grad, grad, 1 - rho);                        // E[g^2]
        torch::Tensor std_ = sq.add(eps).sqrt_();                          // RMS[g]
        torch::Tensor delta = acc.add(eps).sqrt_().div_(std_).mul_(grad);  // RMS[dx]/RMS[g] * g
        acc.mul_(rho).addcmul_(delta, delta, 1 - rho);                     // E[dx^2]
        p.add_(delta, -lr);
      }
    }
    return loss;
  }
};

// ---------------------------------------------------------------- data
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

// IDX file -> (dims, pointer to the payload inside `raw`)
std::vector<int64_t> idx_dims(const std::vector<uint8_t>& raw, size_t* offset) {
  if (raw.size() < 4 || raw[2] != 0x08) throw std::runtime_error("not an unsigned-byte IDX file");
  const int nd = raw[3];
  std::vector<int64_t> dims;
  for (int i = 0; i < nd; ++i) dims.push_back(be32(&raw[4 + 4 * i]));
  *offset = 4 + 4 * size_t(nd);
  return dims;
}

torch::Tensor load_images(const std::string& path, int64_t limit) {  // [N,1,28,28] float / 255
  auto raw = gunzip(path);
  size_t off;
  auto d = idx_dims(raw, &off);
  const int64_t n = std::min(limit, d[0]);
  auto t = torch::from_blob(raw.data() + off, {n, 1, d[1], d[2]}, torch::kUInt8).to(torch::kFloat32);
  return t.div_(255.0);
}

torch::Tensor load_labels(const std::string& path, int64_t limit) {  // [N] int64
  auto raw = gunzip(path);
  size_t off;
  auto d = idx_dims(raw, &off);
  const int64_t n = std::min(limit, d[0]);
  return torch::from_blob(raw.data() + off, {n}, torch::kUInt8).to(torch::kInt64);
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

// The BLAS library this process loaded: Debian's LibTorch links libblas.so.3, whatever the system
// alternative (or LD_LIBRARY_PATH) makes that, and the path of the file loaded names it.
std::string blas_name() {
  (void)torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  if (!f) return "unknown";
  std::string found = "unknown";
  char line[1024];
  while (std::fgets(line, sizeof line, f)) {
    const std::string path = line;
    if (path.find("libblas.so") == std::string::npos) continue;
    found = "reference";
    for (const char* name : {"openblas", "mkl", "blis", "atlas"})
      if (path.find(name) != std::string::npos) found = name;
    break;
  }
  std::fclose(f);
  return found;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Args {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t samples = 60000, batch = 32, epochs = 0;  // epochs 0: the mode's default (cnn 1, mlp 5)
  int threads = 2, latency = 0;
  double lr = 1.0, rho = 0.9;
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
      a.samples = std::stoll(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--epochs")
      a.epochs = std::stoll(v);
    else if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--latency")
      a.latency = std::stoi(v);
    else if (k == "--lr")
      a.lr = std::stod(v);
    else if (k == "--rho")
      a.rho = std::stod(v);
    else
      throw std::runtime_error("unknown option " + k);
  }
  return a;
}

// ---------------------------------------------------------------- seed CNN
int run_cnn(const Args& a) {
  torch::set_num_threads(a.threads);
  torch::manual_seed(0);
  auto Xtr = load_images(a.data + "/train-images-idx3-ubyte.gz", a.samples);
  auto ytr = load_labels(a.data + "/train-labels-idx1-ubyte.gz", a.samples);
  auto Xte = load_images(a.data + "/t10k-images-idx3-ubyte.gz", 1 << 30);
  auto yte = load_labels(a.data + "/t10k-labels-idx1-ubyte.gz", 1 << 30);

  namespace nn = torch::nn;
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 32, 5)), nn::ReLU(),
                       nn::Conv2d(nn::Conv2dOptions(32, 32, 5)), nn::ReLU(),
                       nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(3200, 128),
                       nn::ReLU(), nn::Linear(128, 10));
  Adadelta opt(model->parameters(), AdadeltaOptions(a.lr).rho(a.rho));

  std::printf("libtorch: %s threads: %d blas: %s optimizer: adadelta lr %g rho %g eps 1e-06\n", TORCH_VERSION,
              torch::get_num_threads(), blas_name().c_str(), a.lr, a.rho);
  const int64_t n = Xtr.size(0), nte = Xte.size(0);
  reset_peak_memory();
  for (int64_t ep = 0; ep < std::max<int64_t>(a.epochs, 1); ++ep) {
    auto perm = torch::randperm(n);
    const double t0 = now();
    double tot = 0;
    model->train();
    for (int64_t i = 0; i < n; i += a.batch) {
      auto idx = perm.slice(0, i, std::min(i + a.batch, n));
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(Xtr.index({idx})), ytr.index({idx}));
      loss.backward();
      opt.step();
      tot += loss.item<double>() * idx.size(0);
    }
    const double dt = now() - t0;
    model->eval();
    const double t1 = now();
    torch::Tensor pred;
    {
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < nte; i += 1000)
        parts.push_back(model->forward(Xte.slice(0, i, std::min(i + 1000, nte))).argmax(1));
      pred = torch::cat(parts);
    }
    const double di = now() - t1;
    const double acc = pred.eq(yte).to(torch::kFloat32).mean().item<double>();
    std::printf(
        "epoch: %lld train_s: %.3f train_samples_per_s: %.1f loss: %.4f test_acc: %.4f infer_samples_per_s: "
        "%.1f\n",
        (long long)ep + 1, dt, n / dt, tot / n, acc, nte / di);
    std::fflush(stdout);
  }
  std::printf("run_peak_rss_mb: %.1f\n", peak_memory_mb());
  if (a.latency > 0) {  // as torch_seed.py: one image at a time, the first 5 calls not counted
    torch::NoGradGuard ng;
    std::vector<double> times;
    for (int i = 0; i < a.latency + 5; ++i) {
      auto one = Xte.slice(0, i % 1000, i % 1000 + 1);
      const double t = now();
      (void)model->forward(one).argmax(1).item<int64_t>();
      if (i >= 5) times.push_back(now() - t);
    }
    std::sort(times.begin(), times.end());
    std::printf("latency_ms: %.4f\n", times[times.size() / 2] * 1e3);
  }
  return 0;
}

// ---------------------------------------------------------------- seed MLP
int run_mlp(const Args& a) {
  torch::set_num_threads(a.threads);
  torch::manual_seed(0);
  const int64_t n = 20000;
  auto X = torch::randn({n, 2}) * 2;
  auto y = ((X * X).sum(1, /*keepdim=*/true) < 4).to(torch::kFloat32);
  namespace nn = torch::nn;
  nn::Sequential m(nn::Linear(2, 100), nn::Sigmoid(), nn::Linear(100, 100), nn::Sigmoid(), nn::Linear(100, 1),
                   nn::Sigmoid());
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01));
  const int epochs = a.epochs > 0 ? int(a.epochs) : 5;
  std::printf("libtorch: %s threads: %d blas: %s\n", TORCH_VERSION, torch::get_num_threads(),
              blas_name().c_str());
  int64_t steps = 0;
  torch::Tensor l;
  reset_peak_memory();
  const double t0 = now();
  for (int ep = 0; ep < epochs; ++ep) {
    auto perm = torch::randperm(n);
    for (int64_t i = 0; i < n; i += 16) {
      auto idx = perm.slice(0, i, std::min(i + 16, n));
      opt.zero_grad();
      auto d = m->forward(X.index({idx})) - y.index({idx});
      l = d.pow(2).mean();  // Python: ((m(X[idx]) - y[idx]) ** 2).mean()
      l.backward();
      opt.step();
      ++steps;
    }
  }
  const double dt = now() - t0;
  std::printf("steps: %lld seconds: %.3f steps_per_s: %.1f loss: %.4f\n", (long long)steps, dt, steps / dt,
              l.item<double>());
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
