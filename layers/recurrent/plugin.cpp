#include "recurrent.hpp"

namespace {

void register_all(const lamina_host* host) {
  lamina::sdk::register_layer<lamina::layers::LSTM>(host, "LSTM");
  lamina::sdk::register_layer<lamina::layers::GRU>(host, "GRU");
  lamina::sdk::register_layer<lamina::layers::Bidirectional>(host, "Bidirectional");
}

}  // namespace

LAMINA_PLUGIN("recurrent", "0.1.0", LAMINA_KIND_LAYER, "Keras recurrent layers: LSTM, GRU, Bidirectional",
              register_all, LAMINA_ALWAYS_USABLE)
