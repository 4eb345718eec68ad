#include "normalization_layers.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::layers;
  lamina::sdk::register_layer<BatchNormalization>(host, "BatchNormalization");
  lamina::sdk::register_layer<LayerNormalization>(host, "LayerNormalization");
}

}  // namespace

LAMINA_PLUGIN("normalization", "0.1.0", LAMINA_KIND_LAYER,
              "Keras normalization layers: BatchNormalization, LayerNormalization", register_all,
              LAMINA_ALWAYS_USABLE)
