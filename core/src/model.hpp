// What a layer's build() reaches (model.cpp): add_weight's target and the bound on one weight's
// size.
#pragma once

#include <lamina/tensor.hpp>

#include <cstdint>
#include <functional>
#include <string>

// What add_weight() reaches during a layer's build().
struct lamina_layer_builder_impl {
  std::function<void(const std::string& name, const lamina::Shape& shape, const std::string& initializer,
                     bool trainable)>
      add;
};

namespace lamina {

// The most elements one layer weight may have while layers are built (per thread). Loading a model
// file lowers it to the largest weight the file stores, so a hostile config cannot force a huge
// allocation; `source` says why, for the message.
struct WeightLimit {
  int64_t elements = int64_t(1) << 40;
  std::string source = "lamina's limit";
};
WeightLimit& weight_limit();

}  // namespace lamina
