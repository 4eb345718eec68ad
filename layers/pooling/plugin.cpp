#include "pooling2d.hpp"

namespace {

void register_all(const lamina_host* host) {
  lamina::sdk::register_layer<lamina::layers::MaxPooling1D>(host, "MaxPooling1D");
  lamina::sdk::register_layer<lamina::layers::AveragePooling1D>(host, "AveragePooling1D");
  lamina::sdk::register_layer<lamina::layers::GlobalMaxPooling1D>(host, "GlobalMaxPooling1D");
  lamina::sdk::register_layer<lamina::layers::GlobalAveragePooling1D>(host, "GlobalAveragePooling1D");
  lamina::sdk::register_layer<lamina::layers::MaxPooling2D>(host, "MaxPooling2D");
  lamina::sdk::register_layer<lamina::layers::AveragePooling2D>(host, "AveragePooling2D");
  lamina::sdk::register_layer<lamina::layers::GlobalMaxPooling2D>(host, "GlobalMaxPooling2D");
  lamina::sdk::register_layer<lamina::layers::GlobalAveragePooling2D>(host, "GlobalAveragePooling2D");
}

}  // namespace

LAMINA_PLUGIN(
    "pooling", "0.1.0", LAMINA_KIND_LAYER,
    "Keras pooling layers: MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D, "
    "GlobalAveragePooling1D, MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D",
    register_all, LAMINA_ALWAYS_USABLE)
