#include "activation_layers.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::layers;
  lamina::sdk::register_layer<ReLU>(host, "ReLU");
  lamina::sdk::register_layer<LeakyReLU>(host, "LeakyReLU");
  lamina::sdk::register_layer<ELU>(host, "ELU");
  lamina::sdk::register_layer<PReLU>(host, "PReLU");
  lamina::sdk::register_layer<Softmax>(host, "Softmax");
}

}  // namespace

LAMINA_PLUGIN("activations", "0.1.0", LAMINA_KIND_LAYER,
              "Keras activation layers: ReLU, LeakyReLU, ELU, PReLU, Softmax", register_all,
              LAMINA_ALWAYS_USABLE)
