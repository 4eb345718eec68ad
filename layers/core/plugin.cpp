#include "core_layers.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::layers;
  lamina::sdk::register_layer<InputLayer>(host, "InputLayer");
  lamina::sdk::register_layer<Dense>(host, "Dense");
  lamina::sdk::register_layer<Activation>(host, "Activation");
  lamina::sdk::register_layer<Flatten>(host, "Flatten");
  lamina::sdk::register_layer<Dropout>(host, "Dropout");
  lamina::sdk::register_layer<SpatialDropout<1>>(host, "SpatialDropout1D");
  lamina::sdk::register_layer<SpatialDropout<2>>(host, "SpatialDropout2D");
  lamina::sdk::register_layer<SpatialDropout<3>>(host, "SpatialDropout3D");
  lamina::sdk::register_layer<AlphaDropout>(host, "AlphaDropout");
  lamina::sdk::register_layer<GaussianNoise>(host, "GaussianNoise");
  lamina::sdk::register_layer<GaussianDropout>(host, "GaussianDropout");
  lamina::sdk::register_layer<Reshape>(host, "Reshape");
  lamina::sdk::register_layer<Embedding>(host, "Embedding");
}

}  // namespace

LAMINA_PLUGIN("core", "0.1.0", LAMINA_KIND_LAYER,
              "Keras core layers: InputLayer, Dense, Activation, Flatten, Dropout, SpatialDropout1D/2D/3D, AlphaDropout, GaussianNoise, GaussianDropout, "
              "Reshape, "
              "Embedding",
              register_all,
              LAMINA_ALWAYS_USABLE)
