// `lamina train CONFIG.json`: a model in Keras' JSON format, a compile section, a fit section, a
// data section and optionally a backend. See examples/mnist_cnn.json and docs/config.md.
#include "commands.hpp"

#include <lamina/distributed.hpp>

#include <lamina/lamina.hpp>
#include <lamina/sdk/json.hpp>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace lamina::cli {

void add_train(CLI::App& app, TrainArgs& a) {
  auto* train =
      app.add_subcommand("train", "Train a model described by a JSON config (model, compile, fit, data)");
  train->add_option("config", a.config, "The training config, e.g. examples/mnist_cnn.json")->required();
  train->add_option("--backend", a.backend,
                    "Compute backend (onednn, reference, auto, ...); overrides the config");
  train->add_option("--epochs", a.epochs, "Number of epochs; overrides the config")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--batch-size", a.batch_size, "Batch size; overrides the config")
      ->check(CLI::PositiveNumber);
  train->add_option("--limit", a.limit, "Use only the first N training samples")->check(CLI::PositiveNumber);
  train->add_option("--seed", a.seed, "Random seed (weights, shuffling, dropout)");
  train->add_option("--output", a.output, "Where the trained model goes: a Keras .h5 model file");
  train
      ->add_option(
          "--optimizer-layout", a.optimizer_layout,
          "Which Keras restores --output's optimizer state: tf_keras (default; it restores it whole and "
          "trains on) or keras3 (Keras 3's order); they cannot share one file")
      ->check(CLI::IsMember({"tf_keras", "keras3"}));
  train
      ->add_option("--verbose", a.verbose,
                   "0 silent, 1 progress bar (one line per epoch when the output is not a terminal), "
                   "2 one line per epoch")
      ->check(CLI::Range(0, 2));
  train->add_option(
      "--history", a.history,
      "Write the per-epoch history here: CSV (epoch,accuracy,loss,...), or JSON for a .json name");
}

namespace {

using boost::json::object;
using boost::json::value;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw Error("cannot read " + path + (std::filesystem::exists(path) ? "" : ": the file does not exist"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fails on keys the section does not know: a typo must not be silently ignored.
void only_keys(const object& o, const std::string& where, std::initializer_list<const char*> known) {
  for (auto& [k, v] : o) {
    bool ok = false;
    std::string list;
    for (const char* name : known) {
      ok |= k == name;
      list += (list.empty() ? "" : ", ") + std::string(name);
    }
    if (!ok) throw Error(where + ": unknown key '" + std::string(k) + "' (known: " + list + ")");
  }
}

const object& section(const object& root, const char* key, const std::string& file) {
  auto* v = root.if_contains(key);
  if (!v) throw Error(file + ": the '" + key + "' section is missing");
  if (!v->is_object()) throw Error(file + ": '" + key + "' must be a JSON object");
  return v->as_object();
}

double number(const object& o, const char* key, double fallback, const std::string& where) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (v->is_number()) return v->to_number<double>();
  throw Error(where + ": '" + key + "' must be a number");
}

std::string text(const object& o, const char* key, const std::string& fallback, const std::string& where) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_string()) throw Error(where + ": '" + key + "' must be a string");
  return std::string(v->as_string());
}

}  // namespace

int run_train(const TrainArgs& args) {
  const std::string& file = args.config;
  boost::system::error_code ec;
  value root_value = boost::json::parse(read_text(file), ec);
  if (ec) throw Error(file + ": not valid JSON (" + ec.message() + ")");
  if (!root_value.is_object()) throw Error(file + ": the config must be a JSON object");
  const object& root = root_value.as_object();
  only_keys(root, file, {"model", "compile", "fit", "data", "backend", "seed", "plugin_paths"});

  // Plugin folders, a relative one taken from the config's folder (as "model": "file" is).
  if (auto* paths = root.if_contains("plugin_paths")) {
    if (!paths->is_array()) throw Error(file + ": 'plugin_paths' must be a list of folders");
    for (auto& p : paths->as_array()) {
      if (!p.is_string())
        throw Error(file + ": 'plugin_paths' must hold folder names, got " + lamina::sdk::json_text(p));
      std::filesystem::path folder(std::string(p.as_string()));
      if (folder.is_relative()) folder = std::filesystem::path(file).parent_path() / folder;
      add_plugin_path(folder.string());
    }
  }
  // --backend > LAMINA_BACKEND > the config's "backend" > the user file > auto
  if (!args.backend.empty())
    set_backend(args.backend);
  else if (!std::getenv("LAMINA_BACKEND") && root.contains("backend"))
    set_backend(text(root, "backend", "auto", file));
  uint64_t seed = args.seed ? *args.seed : uint64_t(number(root, "seed", 1337, file));
  set_random_seed(seed);

  // data
  const std::string data_where = file + " [data]";
  const object& data = section(root, "data", file);
  only_keys(data, data_where,
            {"dataset", "path", "scale", "one_hot", "num_classes", "x", "y", "x_test", "y_test"});
  std::string dataset = text(data, "dataset", "fashion_mnist", data_where);
  std::string path = text(data, "path", "", data_where);
  Dataset d;
  // "h5": datasets in an HDF5 file, streamed batch by batch (H5Batches), never loaded whole.
  const bool streamed = dataset == "h5";
  if (dataset == "fashion_mnist")
    d = datasets::fashion_mnist::load_data(path);
  else if (dataset == "mnist" || dataset == "idx")
    d = datasets::mnist::load_data(path);
  else if (streamed && path.empty())
    throw Error(data_where + ": dataset \"h5\" needs 'path', the HDF5 file holding the data");
  else if (!streamed)
    throw Error(data_where + ": unknown dataset '" + dataset + "' (known: fashion_mnist, mnist, idx, h5)");
  if (streamed && std::filesystem::path(path).is_relative() && !std::filesystem::exists(path))
    path = (std::filesystem::path(file).parent_path() / path).string();

  // model
  auto* model_json = root.if_contains("model");
  if (!model_json) throw Error(file + ": the 'model' section is missing (Keras' model.to_json() output)");
  // The model: Keras' to_json() output as a JSON object, as that text in a string, or the name of
  // a file holding it (relative to the config's folder).
  value model_value = *model_json;
  if (model_json->is_string()) {
    std::string t(model_json->as_string());
    if (t.find_first_not_of(" \t\r\n") != std::string::npos && t[t.find_first_not_of(" \t\r\n")] != '{') {
      std::filesystem::path p(t);
      if (p.is_relative()) p = std::filesystem::path(file).parent_path() / p;
      t = read_text(p.string());
    }
    model_value = boost::json::parse(t, ec);
    if (ec) throw Error(file + " [model]: not valid JSON (" + ec.message() + ")");
  }
  Model model = [&] {
    try {
      return Model::from_config(model_value);
    } catch (const Error& e) {
      throw Error(file + " [model]: " + e.what());
    }
  }();

  double scale = number(data, "scale", 255.0, data_where);
  Shape in_shape{-1};
  for (int64_t s : model.input_shape()) in_shape.push_back(s);
  auto prepare_x = [&](const Tensor& x) {
    if (x.size() / x.dim(0) != shape_size(model.input_shape()))
      throw Error(data_where + ": samples of shape " +
                  shape_to_string(Shape(x.shape().begin() + 1, x.shape().end())) +
                  " do not fit the model's input " + shape_to_string(model.input_shape()));
    return x.reshape(in_shape) * float(1.0 / scale);
  };
  bool one_hot = data.contains("one_hot") ? data.at("one_hot").as_bool() : true;
  int64_t classes = int64_t(number(data, "num_classes", double(model.output_shape().back()), data_where));
  auto prepare_y = [&](const Tensor& y) { return one_hot ? to_categorical(y, classes) : y; };

  Tensor x_train, y_train;
  std::unique_ptr<H5Batches> train_batches;
  H5BatchesOptions h5_rows{.x = text(data, "x", "x_train", data_where),
                           .y = text(data, "y", "y_train", data_where),
                           .scale = scale,
                           .num_classes = one_hot ? classes : 0,
                           .sample_shape = model.input_shape()};
  if (!streamed) {
    x_train = d.train.x, y_train = d.train.y;
    if (args.limit && *args.limit < x_train.dim(0)) {
      x_train = x_train.slice(0, *args.limit);
      y_train = y_train.slice(0, *args.limit);
    }
    x_train = prepare_x(x_train);
    y_train = prepare_y(y_train);
  }

  // compile
  const std::string compile_where = file + " [compile]";
  const object& compile = section(root, "compile", file);
  only_keys(compile, compile_where, {"loss", "optimizer", "metrics"});
  CompileOptions co;
  co.loss = text(compile, "loss", "categorical_crossentropy", compile_where);
  if (auto* opt = compile.if_contains("optimizer")) {
    if (opt->is_string()) {
      co.optimizer = OptimizerSpec(std::string(opt->as_string()));
    } else if (opt->is_object() && opt->as_object().contains("class_name")) {
      co.optimizer.class_name = std::string(opt->as_object().at("class_name").as_string());
      if (auto* c = opt->as_object().if_contains("config"); c && c->is_object())
        co.optimizer.config = c->as_object();
    } else {
      throw Error(compile_where + ": 'optimizer' must be a name or {\"class_name\": ..., \"config\": {...}}");
    }
  }
  if (auto* m = compile.if_contains("metrics"); m && m->is_array())
    for (auto& x : m->as_array()) co.metrics.emplace_back(x.as_string());
  model.compile(co);

  // fit
  const std::string fit_where = file + " [fit]";
  const object& fit = section(root, "fit", file);
  only_keys(fit, fit_where,
            {"epochs", "batch_size", "validation", "validation_split", "shuffle", "verbose", "callbacks"});
  FitOptions fo;
  fo.epochs = args.epochs ? *args.epochs : int(number(fit, "epochs", 1, fit_where));
  fo.batch_size = args.batch_size ? *args.batch_size : int64_t(number(fit, "batch_size", 32, fit_where));
  fo.shuffle = fit.contains("shuffle") ? fit.at("shuffle").as_bool() : true;
  fo.verbose = args.verbose ? *args.verbose : int(number(fit, "verbose", 1, fit_where));
  fo.validation_split = number(fit, "validation_split", 0.0, fit_where);
  std::string validation = text(fit, "validation", "test", fit_where);
  if (streamed) {
    // batch_size is per rank; a batch source's batch is the global one.
    h5_rows.batch_size = fo.batch_size * distributed::size();
    train_batches = std::make_unique<H5Batches>(path, h5_rows);
    if (args.limit && *args.limit < train_batches->size()) {  // --limit N: the first N rows
      h5_rows.end = *args.limit;
      train_batches = std::make_unique<H5Batches>(path, h5_rows);
    }
    if (fo.validation_split > 0)
      throw Error(fit_where +
                  ": 'validation_split' needs the data in memory; with dataset \"h5\" use "
                  "\"validation\": \"test\" (datasets x_test and y_test) or \"none\"");
    if (validation == "test") {
      H5BatchesOptions test_rows = h5_rows;
      test_rows.x = text(data, "x_test", "x_test", data_where);
      test_rows.y = text(data, "y_test", "y_test", data_where);
      test_rows.end = -1;
      fo.validation_batches = std::make_shared<H5Batches>(path, test_rows);
    }
  }
  if (validation == "test" && !streamed)
    fo.validation_data = std::make_pair(prepare_x(d.test.x), prepare_y(d.test.y));
  else if (validation != "test" && validation != "none")
    throw Error(fit_where + ": 'validation' must be \"test\" or \"none\"");

  if (auto* callbacks = fit.if_contains("callbacks"); callbacks && !callbacks->is_null()) {
    if (!callbacks->is_array())
      throw Error(fit_where +
                  ": 'callbacks' must be a list such as [{\"class_name\": \"EarlyStopping\", "
                  "\"config\": {\"patience\": 2}}]");
    size_t i = 0;
    for (auto& c : callbacks->as_array())
      fo.callbacks.push_back(callback_from_config(c, fit_where + " callbacks[" + std::to_string(i++) + "]"));
  }

  // In a data-parallel job (mpirun -np N lamina train ...), rank 0 prints and writes the files.
  const bool primary = distributed::is_primary();
  if (!primary) fo.verbose = 0;
  if (fo.verbose) {
    std::cout << "lamina 0.1.0 — backend " << backend() << "\n";
    if (distributed::size() > 1)
      std::cout << "Data-parallel over " << distributed::size() << " ranks (" << distributed::description()
                << "): batch size " << fo.batch_size << " per rank, " << fo.batch_size * distributed::size()
                << " in all\n";
    std::cout << model.summary();
    std::cout << "Train on " << (streamed ? train_batches->size() : x_train.dim(0)) << " samples";
    if (streamed) std::cout << " (" << train_batches->description() << ", read batch by batch)";
    if (fo.validation_data)
      std::cout << ", validate on " << fo.validation_data->first.list.at(0).dim(0) << " samples";
    if (fo.validation_batches) std::cout << ", validate on " << fo.validation_batches->size() << " samples";
    std::cout << "\n";
  }
  History history = streamed ? model.fit(*train_batches, fo) : model.fit(x_train, y_train, fo);
  if (!args.history.empty() && primary) {
    write_history(history, args.history);
    if (fo.verbose) std::cout << "History written to " << args.history << "\n";
  }

  if (!args.output.empty() && primary) {
    model.save(args.output, SaveOptions{.optimizer_layout = args.optimizer_layout == "keras3"
                                                                ? OptimizerLayout::keras3
                                                                : OptimizerLayout::tf_keras});
    if (fo.verbose) std::cout << "Model written to " << args.output << "\n";
  }
  return 0;
}

}  // namespace lamina::cli
