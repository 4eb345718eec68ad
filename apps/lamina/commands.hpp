// The lamina command line: one function per subcommand.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace lamina::cli {

struct TrainArgs {
  std::string config;
  std::string backend;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<int64_t> limit;
  std::optional<uint64_t> seed;
  std::string output;
  std::optional<int> verbose;
};
void add_train(CLI::App& app, TrainArgs& args);
int run_train(const TrainArgs& args);

}  // namespace lamina::cli
