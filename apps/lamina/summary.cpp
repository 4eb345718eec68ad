// `lamina summary MODEL.h5`: Keras' table of layers, output shapes and parameter counts.
#include "commands.hpp"
#include "data.hpp"

#include <lamina/lamina.hpp>

#include <iostream>

namespace lamina::cli {

void add_summary(CLI::App& app, ModelArgs& a) {
  auto* c = app.add_subcommand("summary",
                               "Show the layers, output shapes and parameter counts of a Keras .h5 model");
  c->add_option("model", a.model, "The model file (.h5, written by Keras or lamina)")->required();
  c->add_option("--backend", a.backend, "Compute backend (onednn, reference, auto, ...)");
}

int run_summary(const ModelArgs& a) {
  Model model = open_model(a, true);
  std::cout << model.summary();
  if (model.compiled()) {
    const CompileOptions& o = model.compile_options();
    OptimizerState s = model.optimizer_state();
    std::cout << "Compiled: loss " << o.loss << (o.from_logits ? " (from logits)" : "") << ", optimizer "
              << s.optimizer.class_name << " at step " << s.iterations << "\n";
  } else {
    std::cout << "Not compiled (the file has no training config)\n";
  }
  return 0;
}

}  // namespace lamina::cli
