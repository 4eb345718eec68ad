// Writes small, valid inputs for the fuzz targets' seed corpora: model files of each kind lamina
// reads (with and without optimizer and training state, weights only), their model configs as
// JSON, and a user configuration. Small files let the fuzzer mutate structure rather than weights.
//
//   lamina_fuzz_seeds OUT_DIR   → OUT_DIR/h5/*.h5, OUT_DIR/json/*.json
#include <lamina/h5.hpp>
#include <lamina/lamina.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

using namespace lamina;
using namespace lamina::layers;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: lamina_fuzz_seeds OUT_DIR\n";
    return 2;
  }
  std::filesystem::path out = argv[1];
  std::filesystem::create_directories(out / "h5");
  std::filesystem::create_directories(out / "json");
  set_backend("reference");
  set_random_seed(1);
  auto json = [&](const std::string& name, const std::string& text) {
    std::ofstream(out / "json" / name) << text;
  };

  Sequential mlp;
  mlp.add(Dense(6, {.input_dim = 5, .activation = "relu"}));
  mlp.add(Dropout(0.5));
  mlp.add(Dense(3, {.activation = "softmax"}));
  mlp.compile("categorical_crossentropy", "adam", {"accuracy"});
  Tensor x = Tensor::full({8, 5}, 0.5f);
  Tensor y = to_categorical(Tensor::from_vector({0, 1, 2, 0, 1, 2, 0, 1}, {8}), 3);
  mlp.fit(x, y, {.epochs = 1, .batch_size = 4, .verbose = 0});
  mlp.save((out / "h5" / "mlp_adam.h5").string());
  mlp.save((out / "h5" / "mlp_no_optimizer.h5").string(), false);
  mlp.save_weights((out / "h5" / "mlp_weights.h5").string());
  json("mlp.json", mlp.to_json());

  Sequential cnn;
  cnn.add(Conv2D(2, {3, 3}, {.activation = "relu", .input_shape = {6, 6, 1}}));
  cnn.add(MaxPooling2D({2, 2}));
  cnn.add(Flatten());
  cnn.add(Dense(2, {.activation = "sigmoid"}));
  cnn.compile("binary_crossentropy", "rmsprop");
  cnn.save((out / "h5" / "cnn_rmsprop.h5").string());
  json("cnn.json", cnn.to_json());

  Sequential tiny;
  tiny.add(Dense(1, {.input_dim = 2}));
  tiny.compile("mse", "sgd");
  tiny.save((out / "h5" / "tiny_sgd.h5").string());
  json("tiny.json", tiny.to_json());

  // A graph: two inputs, a shared layer, merges, two outputs.
  KerasTensor a = Input({4}, "a"), b = Input({4}, "b");
  LayerSpec shared = Dense(3, {.activation = "relu", .name = "shared"});
  KerasTensor merged = Concatenate()({Add()({shared(a), shared(b)}), Multiply()({a, b})});
  Model graph({a, b}, {Dense(2, {.activation = "softmax", .name = "cls"})(merged), Dense(1, {.name = "reg"})(merged)},
              "graph");
  graph.compile({.loss = "mse", .optimizer = "adam", .losses = {{"cls", "categorical_crossentropy"}}});
  graph.save((out / "h5" / "graph_adam.h5").string());
  json("graph.json", graph.to_json());

  json("user_config.json", R"({"backend": "reference", "device": 0, "plugin_paths": ["/opt/lamina/plugins"],
  "backends": {"onednn": {"threads": 2}}})");
  std::cout << "seeds written to " << out.string() << "\n";
  return 0;
}
