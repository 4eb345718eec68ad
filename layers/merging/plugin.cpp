#include "merging_layers.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::layers;
  lamina::sdk::register_layer<Add>(host, "Add");
  lamina::sdk::register_layer<Subtract>(host, "Subtract");
  lamina::sdk::register_layer<Multiply>(host, "Multiply");
  lamina::sdk::register_layer<Average>(host, "Average");
  lamina::sdk::register_layer<Maximum>(host, "Maximum");
  lamina::sdk::register_layer<Minimum>(host, "Minimum");
  lamina::sdk::register_layer<Concatenate>(host, "Concatenate");
}

}  // namespace

LAMINA_PLUGIN("merging", "0.1.0", LAMINA_KIND_LAYER,
              "Keras merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate", register_all,
              LAMINA_ALWAYS_USABLE)
