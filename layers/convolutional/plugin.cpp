#include "conv1d.hpp"
#include "conv2d.hpp"
#include "conv2d_transpose.hpp"
#include "depthwise_conv2d.hpp"

namespace {

void register_all(const lamina_host* host) {
  lamina::sdk::register_layer<lamina::layers::Conv1D>(host, "Conv1D");
  lamina::sdk::register_layer<lamina::layers::Conv2D>(host, "Conv2D");
  lamina::sdk::register_layer<lamina::layers::Conv2DTranspose>(host, "Conv2DTranspose");
  lamina::sdk::register_layer<lamina::layers::DepthwiseConv2D>(host, "DepthwiseConv2D");
  lamina::sdk::register_layer<lamina::layers::SeparableConv2D>(host, "SeparableConv2D");
}

}  // namespace

LAMINA_PLUGIN("convolutional", "0.1.0", LAMINA_KIND_LAYER,
              "Keras convolution layers: Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D",
              register_all, LAMINA_ALWAYS_USABLE)
