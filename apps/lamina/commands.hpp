// The lamina command line: one function per subcommand.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace lamina::cli {

struct TrainArgs {
  std::string config;
  std::string backend;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<int64_t> limit;
  std::optional<uint64_t> seed;
  std::string output;
  std::string optimizer_layout =
      "tf_keras";  // --optimizer-layout: which Keras restores --output's optimizer state
  std::optional<int> verbose;
  std::string history;  // --history FILE: the History as CSV, or JSON for a .json name
};
void add_train(CLI::App& app, TrainArgs& args);
int run_train(const TrainArgs& args);

// summary / evaluate / predict on a Keras .h5 model file.
struct ModelArgs {
  std::string model;
  std::string data;    // evaluate: --data SPEC; predict: --input SPEC
  std::string output;  // predict
  std::string backend;
  int64_t batch_size = 32;
  std::optional<double> scale;
  std::optional<int64_t> limit;
};
void add_summary(CLI::App& app, ModelArgs& args);
int run_summary(const ModelArgs& args);
void add_evaluate(CLI::App& app, ModelArgs& args);
int run_evaluate(const ModelArgs& args);
void add_predict(CLI::App& app, ModelArgs& args);
int run_predict(const ModelArgs& args);

// visualize filters / visualize activations: PNG pictures of a layer.
struct VisualizeArgs {
  std::string what;  // "filters", "activations" or "reconstructions": the subcommand given
  std::string model, layer, output, input, backend;
  std::optional<int> scale, columns;
  std::optional<int64_t> index;
  int64_t count = 10;  // reconstructions: how many samples
  std::optional<double> input_scale;
};
void add_visualize(CLI::App& app, VisualizeArgs& args);
int run_visualize(const VisualizeArgs& args);

// plot: training curves from a history file.
struct PlotArgs {
  std::string history, output;
  std::vector<std::string> metrics;
};
void add_plot(CLI::App& app, PlotArgs& args);
int run_plot(const PlotArgs& args);

}  // namespace lamina::cli
