// lamina: train models from JSON configs, use Keras .h5 model files and inspect the plugins.
#include "commands.hpp"

#include <lamina/lamina.hpp>

#include <iomanip>
#include <iostream>

namespace {

int run_plugins() {
  auto plugins = lamina::list_plugins();
  std::cout << "Plugin folders searched, in order:\n";
  for (auto& p : lamina::plugin_search_path()) std::cout << "  " << p << "\n";
  std::cout << "\n";
  if (plugins.empty()) {
    std::cout << "No plugins found. Set LAMINA_PLUGIN_PATH to the folder that holds them.\n";
    return 1;
  }
  std::cout << std::left << std::setw(16) << "NAME" << std::setw(14) << "KIND" << std::setw(9) << "VERSION"
            << std::setw(5) << "ABI" << std::setw(8) << "USABLE"
            << "DETAILS\n";
  for (auto& p : plugins) {
    std::string provides;
    for (auto& s : p.provides) provides += (provides.empty() ? "" : ", ") + s;
    std::cout << std::left << std::setw(16) << p.name << std::setw(14) << p.kind << std::setw(9)
              << (p.version.empty() ? "?" : p.version) << std::setw(5) << p.abi << std::setw(8)
              << (p.usable ? "yes" : "no") << (p.usable ? "" : "why: ") << p.reason
              << (p.usable && p.kind == "backend" ? " (score " + std::to_string(p.score) + ")" : "")
              << (!provides.empty() && p.kind != "backend" ? (p.reason.empty() ? "" : "; ") + provides : "")
              << "\n"
              << std::string(16, ' ') << p.path << "\n";
  }
  auto backends = lamina::available_backends();
  std::cout << "\nDefault backend (auto): " << (backends.empty() ? "none usable" : backends.front()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lamina — Keras-style deep learning in C++ with pluggable backends"};
  app.set_version_flag("--version", "lamina 0.1.0");
  app.require_subcommand(1);
  lamina::cli::TrainArgs train;
  lamina::cli::add_train(app, train);
  lamina::cli::ModelArgs summary, evaluate, predict;
  lamina::cli::add_summary(app, summary);
  lamina::cli::add_evaluate(app, evaluate);
  lamina::cli::add_predict(app, predict);
  app.add_subcommand("plugins",
                     "List every plugin found, with its path, kind, version and whether it is usable");
  lamina::cli::VisualizeArgs visualize;
  lamina::cli::add_visualize(app, visualize);
  lamina::cli::PlotArgs plot;
  lamina::cli::add_plot(app, plot);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("train")) return lamina::cli::run_train(train);
    if (app.got_subcommand("plugins")) return run_plugins();
    if (app.got_subcommand("summary")) return lamina::cli::run_summary(summary);
    if (app.got_subcommand("evaluate")) return lamina::cli::run_evaluate(evaluate);
    if (app.got_subcommand("predict")) return lamina::cli::run_predict(predict);
    if (app.got_subcommand("visualize")) return lamina::cli::run_visualize(visualize);
    if (app.got_subcommand("plot")) return lamina::cli::run_plot(plot);
  } catch (const std::exception& e) {
    std::cerr << "lamina: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
