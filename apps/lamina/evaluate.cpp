// `lamina evaluate MODEL.h5 --data SPEC`: the model's loss and accuracy on labelled data.
#include "commands.hpp"
#include "data.hpp"

#include <lamina/lamina.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace lamina::cli {

namespace {

bool is_sparse(const std::string& loss) {
  std::string k;
  for (char c : loss)
    if (c != '_') k += char(std::tolower(static_cast<unsigned char>(c)));
  return k == "sparsecategoricalcrossentropy";
}

// Labels as the loss wants them: class indices for the sparse loss, one-hot rows for the others.
Tensor prepare_labels(const Tensor& y, bool sparse, const Shape& output, const std::string& spec) {
  int64_t n = y.dim(0), classes = output.empty() ? 1 : output.back();
  bool indices = y.ndim() == 1 || (y.ndim() == 2 && y.dim(1) == 1);
  if (indices) {
    if (sparse || classes == 1) return y.reshape({n, 1});
    return to_categorical(y.reshape({n}), classes);
  }
  if (y.ndim() == 2 && y.dim(1) == classes) {
    if (!sparse) return y;
    std::vector<float> v = y.to_vector();
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float* row = v.data() + i * classes;
      out[size_t(i)] = float(std::max_element(row, row + classes) - row);
    }
    return Tensor::from_vector(out, {n, 1});
  }
  throw Error(spec + ": labels of shape " + shape_to_string(y.shape()) +
              " are neither class indices nor one-hot rows for the model's " + std::to_string(classes) +
              " outputs");
}

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

}  // namespace

void add_evaluate(CLI::App& app, ModelArgs& a) {
  auto* c = app.add_subcommand("evaluate", "Loss and accuracy of a Keras .h5 model on labelled data");
  c->add_option("model", a.model, "The model file (.h5, written by Keras or lamina)")->required();
  c->add_option("--data", a.data, "mnist:DIR, fashion_mnist[:DIR] or h5:FILE:X:Y")->required();
  add_model_options(*c, a);
}

int run_evaluate(const ModelArgs& a) {
  Model model = open_model(a, true);
  DataSource data(a.data, a.scale);
  if (!data.has_labels()) throw Error(a.data + ": evaluate needs labels; give them as h5:FILE:X:Y");
  if (!model.compiled()) {
    // The file's optimizer may be one lamina lacks; its loss and metrics still apply, and
    // evaluating needs no optimizer.
    try {
      if (std::optional<CompileOptions> stored = load_training_config(a.model)) {
        stored->optimizer = "sgd";
        model.compile(*stored);
        std::cerr << "lamina: evaluating " << a.model << " with its training config's loss " << stored->loss
                  << "\n";
      }
    } catch (const Error&) {
    }
  }
  CompileOptions options;
  if (model.compiled()) {
    options = model.compile_options();
  } else {
    bool one = model.output_shape().empty() || model.output_shape().back() == 1;
    options.loss = one ? "binary_crossentropy" : "categorical_crossentropy";
    std::cerr << "lamina: " << a.model << " has no training config; evaluating with loss " << options.loss
              << "\n";
  }
  bool has_accuracy = std::any_of(options.metrics.begin(), options.metrics.end(),
                                  [](const std::string& m) { return m == "accuracy" || m == "acc"; });
  if (!has_accuracy) options.metrics.push_back("accuracy");
  if (!model.compiled() || !has_accuracy) model.compile(options);
  bool sparse = is_sparse(options.loss);

  int64_t n = rows_to_use(data, a);
  if (n == 0) throw Error(a.data + ": there are no samples");
  std::map<std::string, double> totals;
  for (int64_t b = 0; b < n; b += kChunkRows) {
    int64_t e = std::min(n, b + kChunkRows);
    Tensor x = data.inputs(b, e, model.input_shape());
    Tensor y = prepare_labels(data.labels(b, e), sparse, model.output_shape(), a.data);
    // Every value is a mean over samples, so chunks combine weighted by their size.
    for (auto& [k, v] : model.evaluate(x, y, a.batch_size)) totals[k] += v * double(e - b);
  }
  std::cout << "Evaluated " << a.model << " on " << n << " samples of " << a.data << "\n";
  std::cout << "loss: " << number(totals["loss"] / double(n)) << "\n";
  for (auto& [k, v] : totals)
    if (k != "loss") std::cout << (k == "acc" ? "accuracy" : k) << ": " << number(v / double(n)) << "\n";
  return 0;
}

}  // namespace lamina::cli
