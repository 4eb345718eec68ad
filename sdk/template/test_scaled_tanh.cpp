// Loads the plugin through LAMINA_PLUGIN_PATH, checks its output, trains a model that uses it, and
// checks that a saved model loads back with the same predictions. Exit code 0 = pass.
#include <lamina/lamina.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  failures += ok ? 0 : 1;
}
float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = a.size() == b.size() ? 0.0f : 1e30f;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace

int main() {
  using namespace lamina;
  try {
    set_random_seed(1);
    // The layer alone: alpha starts at ones, so y = tanh(x).
    Sequential probe;
    probe.add(LayerSpec{"ScaledTanh", {{"input_shape", {3}}}});
    std::vector<float> x = {-1.0f, 0.0f, 2.0f};
    std::vector<float> expected = {std::tanh(-1.0f), 0.0f, std::tanh(2.0f)};
    expect(max_diff(probe.predict(Tensor::from_vector(x, {1, 3})).to_vector(), expected) < 1e-6f,
           "ScaledTanh computes alpha * tanh(x)");

    // In a model: Dense -> ScaledTanh, trained on y = 0.5 * tanh(x0 - x1).
    std::vector<float> xs, ys;
    for (int i = 0; i < 256; ++i) {
      float a = float(i % 16) / 8.0f - 1.0f, b = float(i / 16) / 8.0f - 1.0f;
      xs.insert(xs.end(), {a, b});
      ys.push_back(0.5f * std::tanh(a - b));
    }
    Tensor tx = Tensor::from_vector(xs, {256, 2}), ty = Tensor::from_vector(ys, {256, 1});
    Sequential model;
    model.add(layers::Dense(1, {.input_dim = 2}));
    model.add(LayerSpec{"ScaledTanh", {}});
    model.compile("mean_squared_error", optimizers::Adam({.learning_rate = 0.05}));
    double before = model.evaluate(tx, ty).at("loss");
    model.fit(tx, ty, {.epochs = 30, .batch_size = 32, .verbose = 0});
    double after = model.evaluate(tx, ty).at("loss");
    std::printf("loss %.5f -> %.5f\n", before, after);
    expect(after < before / 10, "a model with ScaledTanh trains (loss falls tenfold)");

    // Saved and loaded: the file names the class; the plugin is found again by name.
    std::string path = (std::filesystem::temp_directory_path() / "scaled_tanh_test.h5").string();
    model.save(path);
    Sequential loaded = load_model(path);
    expect(loaded.layer(1).class_name() == "ScaledTanh", "the loaded model has the ScaledTanh layer");
    expect(max_diff(loaded.predict(tx).to_vector(), model.predict(tx).to_vector()) == 0.0f,
           "the loaded model predicts exactly what the saved one did");
    std::filesystem::remove(path);
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
