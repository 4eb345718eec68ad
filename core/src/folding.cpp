#include "folding.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace lamina {

namespace json = boost::json;

namespace {

// The weight named `name` of `layer`, or an undefined tensor.
Tensor weight(const Layer& layer, const char* name) {
  const std::vector<std::string>& names = layer.weight_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return layer.weights()[i];
  return Tensor();
}

bool is_string(const json::object& c, const char* key, const char* value, bool absent_ok) {
  const json::value* v = c.if_contains(key);
  if (!v || v->is_null()) return absent_ok;
  return v->is_string() && v->as_string() == value;
}

// BatchNormalization's axis (Keras 3: -1; tf_keras: [rank]) names the last of `rank` axes.
bool last_axis(const json::object& c, int64_t rank) {
  const json::value* v = c.if_contains("axis");
  if (!v) return true;  // the default, -1
  if (v->is_array()) {
    if (v->as_array().size() != 1) return false;
    v = &v->as_array()[0];
  }
  if (!v->is_int64()) return false;
  const int64_t axis = v->as_int64();
  return axis == -1 || axis == rank - 1;
}

}  // namespace

bool batch_norm_folding_enabled() {
  const char* env = std::getenv("LAMINA_FOLD_BATCH_NORM");
  return !(env && std::strcmp(env, "0") == 0);
}

bool called_once(const Layer& layer) {
  int calls = 0;
  for (const auto& node : LayerAccess::nodes(layer))
    if (!node.expired()) ++calls;
  return calls == 1;
}

std::unique_ptr<BatchNormFold> plan_batch_norm_fold(const std::shared_ptr<graph::Node>& conv,
                                                    const std::shared_ptr<graph::Node>& bn) {
  const Layer& bn_layer = *bn->layer;
  const Layer& conv_layer = *conv->layer;
  if (bn_layer.class_name() != "BatchNormalization" || bn->inputs.size() != 1 || bn->inputs[0].node != conv ||
      conv->inputs.size() != 1 || conv->output_shapes.size() != 1)
    return nullptr;
  if (conv_layer.class_name() != "Conv2D" && conv_layer.class_name() != "Dense") return nullptr;
  const json::object conv_config = conv_layer.get_config(), bn_config = bn_layer.get_config();
  if (!is_string(conv_config, "activation", "linear", true) ||
      !is_string(conv_config, "data_format", "channels_last", true))
    return nullptr;
  // ranks with the batch axis
  if (!last_axis(bn_config, int64_t(conv->output_shapes[0].size()) + 1)) return nullptr;
  if (!weight(conv_layer, "kernel").defined() || !weight(bn_layer, "moving_mean").defined() ||
      !weight(bn_layer, "moving_variance").defined())
    return nullptr;
  auto fold = std::make_unique<BatchNormFold>();
  fold->conv = conv;
  fold->bn = bn;
  if (const json::value* eps = bn_config.if_contains("epsilon"); eps && eps->is_number())
    fold->epsilon = eps->to_number<double>();
  return fold;
}

Tensor run_batch_norm_fold(const BatchNormFold& fold, const Tensor& input, uint64_t seed) {
  const Layer& conv = *fold.conv->layer;
  const Layer& bn = *fold.bn->layer;
  std::call_once(fold.made, [&] {
    // The same layer with a bias; no initializer runs (build_detached), and the settings Keras keeps
    // but lamina does not apply are dropped so that the copy warns about nothing.
    json::object config = conv.get_config();
    config["name"] = conv.name() + "_folded";
    config["use_bias"] = true;
    for (const char* key : {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                            "kernel_constraint", "bias_constraint"})
      if (config.contains(key)) config[key] = nullptr;
    auto layer = LayerAccess::create(LayerSpec(conv.class_name(), config), "");
    LayerAccess::build_detached(*layer, {fold.conv->inputs[0].shape()});
    fold.folded = std::move(layer);
  });
  const Tensor kernel = weight(conv, "kernel");
  const Tensor bias = weight(conv, "bias");
  const Tensor gamma = weight(bn, "gamma"), beta = weight(bn, "beta");
  const Tensor mean = weight(bn, "moving_mean"), variance = weight(bn, "moving_variance");
  const Shape channels = mean.shape();
  // k = gamma / √(variance + ε); kernel·k along the output channels (the kernel's last axis)
  Tensor k = ops::div(gamma.defined() ? gamma : ops::full(channels, 1.0f),
                      ops::sqrt(ops::scale(variance, 1.0, fold.epsilon)));
  Shape along_last(kernel.shape().size(), 1);
  along_last.back() = channels[0];
  Tensor folded_kernel = ops::mul(kernel, ops::reshape(k, along_last));
  Tensor folded_bias = ops::mul(bias.defined() ? ops::sub(bias, mean) : ops::neg(mean), k);
  if (beta.defined()) folded_bias = ops::add(folded_bias, beta);
  return LayerAccess::call_with(*fold.folded, {folded_kernel, folded_bias}, input, false, seed);
}

}  // namespace lamina
