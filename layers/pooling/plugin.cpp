#include "pooling2d.hpp"

namespace {

void register_all(const lamina_host* host) {
  lamina::sdk::register_layer<lamina::layers::MaxPooling2D>(host, "MaxPooling2D");
  lamina::sdk::register_layer<lamina::layers::AveragePooling2D>(host, "AveragePooling2D");
}

}  // namespace

LAMINA_PLUGIN("pooling", "0.1.0", LAMINA_KIND_LAYER, "Keras pooling layers: MaxPooling2D, AveragePooling2D",
              register_all, LAMINA_ALWAYS_USABLE)
