#include "reshaping_layers.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::layers;
  lamina::sdk::register_layer<ZeroPadding2D>(host, "ZeroPadding2D");
  lamina::sdk::register_layer<Cropping2D>(host, "Cropping2D");
  lamina::sdk::register_layer<UpSampling2D>(host, "UpSampling2D");
  lamina::sdk::register_layer<Permute>(host, "Permute");
  lamina::sdk::register_layer<RepeatVector>(host, "RepeatVector");
}

}  // namespace

LAMINA_PLUGIN("reshaping", "0.1.0", LAMINA_KIND_LAYER,
              "Keras reshaping layers: ZeroPadding2D, Cropping2D, UpSampling2D, Permute, RepeatVector",
              register_all, LAMINA_ALWAYS_USABLE)
