// train_and_reload CONFIG.json MODEL.h5: builds the model and optimizer of a `lamina train` config
// (its "model" and "compile" sections), trains it briefly on Fashion-MNIST, saves it to MODEL.h5,
// loads it back and checks the predictions and the optimizer state are the same; then checks the
// same model gives the same predictions on every usable backend.
// train_and_reload --load MODEL.h5: only loads the file (to see the error without the plugins).
#include <lamina/lamina.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace lamina;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok: " : "FAILED: ") << what << "\n";
  failures += ok ? 0 : 1;
}
float max_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return 1e30f;
  float d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string(argv[1]) == "--load") {
      Sequential m = load_model(argv[2]);
      std::cout << "loaded " << m.size() << " layers\n";
      return 0;
    }
    if (argc != 3) {
      std::cerr << "usage: train_and_reload CONFIG.json MODEL.h5 | --load MODEL.h5\n";
      return 2;
    }
    std::ifstream in(argv[1]);
    std::stringstream text;
    text << in.rdbuf();
    boost::json::object root = boost::json::parse(text.str()).as_object();
    const boost::json::object& compile = root.at("compile").as_object();
    const boost::json::object& optimizer = compile.at("optimizer").as_object();

    set_backend("reference");
    set_random_seed(7);
    Sequential model = Sequential::from_config(root.at("model"));
    model.compile(std::string(compile.at("loss").as_string()),
                  OptimizerSpec(std::string(optimizer.at("class_name").as_string()),
                                optimizer.at("config").as_object()),
                  {"accuracy"});

    Dataset d = datasets::fashion_mnist::load_data();
    Tensor x = ops::scale(d.train.x.slice(0, 1024), 1.0 / 255.0);
    Tensor y = to_categorical(d.train.y.slice(0, 1024), 10);
    Tensor x_test = ops::scale(d.test.x.slice(0, 200), 1.0 / 255.0);
    double before = model.evaluate(x, y).at("loss");
    model.fit(x, y, {.epochs = 3, .batch_size = 32, .verbose = 0});
    double after = model.evaluate(x, y).at("loss");
    std::printf("training loss %.4f -> %.4f\n", before, after);
    expect(after < 0.7 * before, "the model with the plugin layers and optimizer trains");

    Tensor predicted = model.predict(x_test);
    model.save(argv[2]);
    Sequential loaded = load_model(argv[2]);
    expect(max_diff(loaded.predict(x_test), predicted) == 0.0f,
           "the reloaded model predicts exactly the same");
    OptimizerState saved = model.optimizer_state(), restored = loaded.optimizer_state();
    expect(restored.optimizer.class_name == optimizer.at("class_name").as_string(),
           "the reloaded optimizer is " + saved.optimizer.class_name);
    expect(restored.iterations == saved.iterations && restored.slot_names == saved.slot_names,
           "the optimizer's iterations and slot names are restored");
    float slot_diff = restored.slots.size() == saved.slots.size() ? 0.0f : 1e30f;
    for (size_t i = 0; i < saved.slots.size() && i < restored.slots.size(); ++i)
      for (size_t k = 0; k < saved.slots[i].size(); ++k)
        slot_diff = std::max(slot_diff, max_diff(saved.slots[i][k], restored.slots[i][k]));
    expect(slot_diff == 0.0f, "the optimizer's slots are restored exactly");
    // Training goes on identically from the saved state.
    model.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0, .shuffle = false});
    loaded.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0, .shuffle = false});
    expect(max_diff(loaded.predict(x_test), model.predict(x_test)) < 1e-6f,
           "one more epoch from the saved state gives the same model");

    // Every usable backend computes the same (HardSwish: a kernel on onednn, ops elsewhere).
    Tensor reference = loaded.predict(x_test);
    for (const std::string& b : available_backends()) {
      if (b == "reference") continue;
      set_backend(b);
      expect(max_diff(loaded.predict(x_test), reference) < 1e-4f,
             "backend " + b + " predicts as reference does");
    }
  } catch (const std::exception& e) {
    std::cout << "error: " << e.what() << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
