#include "keras_optimizer.hpp"

namespace {

void register_all(const lamina_host* host) {
  using namespace lamina::optimizers;
  lamina::sdk::register_optimizer<SGD>(host, "SGD");
  lamina::sdk::register_optimizer<Adadelta>(host, "Adadelta");
  lamina::sdk::register_optimizer<Adam>(host, "Adam");
  lamina::sdk::register_optimizer<RMSprop>(host, "RMSprop");
}

}  // namespace

LAMINA_PLUGIN("builtin", "0.1.0", LAMINA_KIND_OPTIMIZER, "Keras optimizers: SGD, Adadelta, Adam, RMSprop",
              register_all, LAMINA_ALWAYS_USABLE)
