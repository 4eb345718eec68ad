// Unsupervised pretraining, the seed lecture's slide made real: a deep sigmoid MLP
// (784-256-256-256-256-10) trained with plain SGD from three starting points:
//   random_normal   small random weights (stddev 0.01), as deep nets were initialised before 2006
//   glorot_uniform  Keras' default initialisation (Glorot & Bengio 2010)
//   rbm             greedy layer-wise pretraining: each hidden layer an RBM (plugins/pretraining)
//                   trained by contrastive divergence on the previous layer's output, no labels
//   autoencoder     greedy layer-wise pretraining with autoencoders (Bengio et al. 2007): each
//                   hidden layer the encoder of a one-hidden-layer autoencoder trained by `fit` to
//                   reproduce the previous layer's output, no labels
// It prints, for each, the mean |dL/dW| of every layer's kernel before training (where gradients
// vanish, the first layers barely move) and the test accuracy after each epoch of fine-tuning.
// docs/pretraining.md has the table and how to reproduce it.
//
//   dbn_pretraining [MNIST_DIR] [--epochs N] [--pretrain-epochs N] [--train N]
// MNIST_DIR holds train-images-idx3-ubyte.gz etc.; with only the t10k files, the first 8000 test
// images train and the last 2000 test.
#include <lamina/lamina.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

using namespace lamina;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHidden = 256;
constexpr int kDepth = 4;

struct Data {
  Tensor x_train, y_train, x_test, y_test;
};

Data load(const std::string& folder, int64_t train_limit) {
  Data d;
  if (fs::exists(fs::path(folder) / "train-images-idx3-ubyte.gz") ||
      fs::exists(fs::path(folder) / "train-images-idx3-ubyte")) {
    Dataset m = datasets::mnist::load_data(folder);
    d.x_train = m.train.x, d.y_train = m.train.y, d.x_test = m.test.x, d.y_test = m.test.y;
  } else {
    Tensor x = read_idx((fs::path(folder) / "t10k-images-idx3-ubyte.gz").string());
    Tensor y = read_idx((fs::path(folder) / "t10k-labels-idx1-ubyte.gz").string());
    d.x_train = x.slice(0, 8000), d.y_train = y.slice(0, 8000);
    d.x_test = x.slice(8000, 10000), d.y_test = y.slice(8000, 10000);
  }
  if (train_limit > 0 && train_limit < d.x_train.dim(0))
    d.x_train = d.x_train.slice(0, train_limit), d.y_train = d.y_train.slice(0, train_limit);
  auto flat = [](const Tensor& x) { return ops::scale(x, 1.0 / 255.0).reshape({x.dim(0), 784}); };
  d.x_train = flat(d.x_train), d.x_test = flat(d.x_test);
  d.y_train = to_categorical(d.y_train, 10), d.y_test = to_categorical(d.y_test, 10);
  return d;
}

// Mean |dL/dW| of each layer's kernel on `x`, `y` (categorical crossentropy), first layer first.
std::vector<double> kernel_gradients(Sequential& model, const Tensor& x, const Tensor& y) {
  std::vector<Tensor> kernels;
  std::vector<bool> trained;  // the flags fit relies on, put back below
  for (size_t i = 0; i < model.size(); ++i) {
    Tensor k = model.layer(i).weights()[0];
    trained.push_back(k.requires_grad());
    k.set_requires_grad(true);
    kernels.push_back(k);
  }
  Tensor out = x;
  for (size_t i = 0; i < model.size(); ++i) out = model.layer(i).call(out, false, 0);
  Tensor loss =
      ops::scale(ops::mean(ops::mul(y, ops::log(ops::clip(out, 1e-7, 1.0)))), -10.0);  // Σ over 10 classes
  std::vector<Tensor> g = gradients(loss, kernels);
  std::vector<double> result;
  for (size_t i = 0; i < g.size(); ++i) {
    kernels[i].set_requires_grad(trained[i]);
    double s = 0;
    for (float v : g[i].to_vector()) s += std::fabs(v);
    result.push_back(s / double(g[i].size()));
  }
  return result;
}

Sequential make_mlp(const std::string& init) {
  Sequential model("deep_sigmoid_mlp");
  for (int i = 0; i < kDepth; ++i) {
    boost::json::object config{{"units", kHidden}, {"activation", "sigmoid"}};
    if (i == 0) config["input_shape"] = boost::json::array{784};
    if (init == "random_normal")
      config["kernel_initializer"] =
          boost::json::object{{"class_name", "RandomNormal"}, {"config", {{"stddev", 0.01}}}};
    if (init == "rbm") {
      config.erase("activation");
      model.add(LayerSpec{"RBM", config});  // the RBM's forward pass is a sigmoid layer
    } else {
      model.add(LayerSpec{"Dense", config});
    }
  }
  model.add(layers::Dense(10, {.activation = "softmax"}));
  return model;
}

// Greedy layer-wise: RBM k learns from the hidden activities of RBMs 1..k-1, without labels.
void pretrain(Sequential& mlp, const Tensor& x, int epochs) {
  Tensor input = x;
  for (int k = 0; k < kDepth; ++k) {
    Sequential rbm_model;
    rbm_model.add(LayerSpec{"RBM",
                            {{"units", kHidden},
                             {"pretrain", true},
                             {"learning_rate", 0.1},
                             {"input_shape", boost::json::array{input.dim(1)}}}});
    Layer& rbm = rbm_model.layer(0);
    auto start = std::chrono::steady_clock::now();
    for (int e = 0; e < epochs; ++e)
      for (int64_t b = 0; b + 32 <= input.dim(0); b += 32) rbm.call(input.slice(b, b + 32), true, 0);
    auto w = rbm.get_weights();
    Tensor h = ops::sigmoid(ops::add(ops::matmul(input, w[0]), w[1]));
    Tensor r = ops::sigmoid(ops::add(ops::matmul(h, w[0], false, true), w[2]));
    Tensor d = ops::sub(r, input);
    std::printf("  RBM %d (%lld -> %lld): %d epochs of CD-1, reconstruction error %.4f, %.1f s\n", k + 1,
                (long long)input.dim(1), (long long)kHidden, epochs, ops::mean(ops::mul(d, d)).to_vector()[0],
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    mlp.layer(size_t(k)).set_weights(w);
    input = h;
  }
}

// Greedy layer-wise: autoencoder k (Dense encoder, Dense decoder, both sigmoid) learns to reproduce
// the hidden activities of encoders 1..k-1 through `kHidden` units; its encoder becomes layer k.
void pretrain_autoencoders(Sequential& mlp, const Tensor& x, int epochs) {
  Tensor input = x;
  for (int k = 0; k < kDepth; ++k) {
    Sequential autoencoder("autoencoder_" + std::to_string(k + 1));
    autoencoder.add(layers::Dense(kHidden, {.input_shape = {input.dim(1)}, .activation = "sigmoid"}));
    autoencoder.add(layers::Dense(input.dim(1), {.activation = "sigmoid"}));
    autoencoder.compile("binary_crossentropy", optimizers::Adam(), {});
    auto start = std::chrono::steady_clock::now();
    autoencoder.fit(input, input, {.epochs = epochs, .batch_size = 32, .verbose = 0});
    Tensor d = ops::sub(autoencoder.predict(input), input);
    std::printf("  autoencoder %d (%lld -> %lld -> %lld): %d epochs, reconstruction error %.4f, %.1f s\n",
                k + 1, (long long)input.dim(1), (long long)kHidden, (long long)input.dim(1), epochs,
                ops::mean(ops::mul(d, d)).to_vector()[0],
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    mlp.layer(size_t(k)).set_weights(autoencoder.layer(0).get_weights());
    input = autoencoder.layer(0).call(input, false, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string folder = "../shared/data/mnist";
    int epochs = 10, pretrain_epochs = 5;
    int64_t train_limit = 0;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--epochs" && i + 1 < argc)
        epochs = std::stoi(argv[++i]);
      else if (a == "--pretrain-epochs" && i + 1 < argc)
        pretrain_epochs = std::stoi(argv[++i]);
      else if (a == "--train" && i + 1 < argc)
        train_limit = std::stoll(argv[++i]);
      else
        folder = a;
    }
    Data d = load(folder, train_limit);
    std::printf("MNIST: %lld training and %lld test images; backend %s\n", (long long)d.x_train.dim(0),
                (long long)d.x_test.dim(0), backend().c_str());
    for (std::string init : {"random_normal", "glorot_uniform", "rbm", "autoencoder"}) {
      set_random_seed(1);
      std::printf("\n%s\n", init.c_str());
      Sequential mlp = make_mlp(init);
      if (init == "rbm") pretrain(mlp, d.x_train, pretrain_epochs);
      if (init == "autoencoder") pretrain_autoencoders(mlp, d.x_train, pretrain_epochs);
      mlp.compile("categorical_crossentropy", optimizers::SGD({.learning_rate = 0.1}), {"accuracy"});
      std::vector<double> g = kernel_gradients(mlp, d.x_train.slice(0, 1000), d.y_train.slice(0, 1000));
      std::printf("  mean |dL/dW| per layer, input first:");
      for (double v : g) std::printf(" %.2e", v);
      std::printf("\n  test accuracy by epoch:");
      for (int e = 0; e < epochs; ++e) {
        mlp.fit(d.x_train, d.y_train, {.epochs = 1, .batch_size = 32, .verbose = 0});
        std::printf(" %.4f", mlp.evaluate(d.x_test, d.y_test).at("accuracy"));
        std::fflush(stdout);
      }
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
