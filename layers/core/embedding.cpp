#include "core_layers.hpp"

namespace lamina::layers {

Embedding::Embedding(const std::string& config_json) {
  Config config(config_json, "Embedding");
  label_ = layer_label("Embedding", config);
  if (!config.has("input_dim"))
    config.fail(
        "config key 'input_dim' is missing; give the vocabulary size (the largest index + 1), e.g. 1000");
  input_dim_ = config.require_int("input_dim");
  if (input_dim_ < 1)
    config.fail("config key 'input_dim' must be a positive integer, got " + std::to_string(input_dim_));
  if (!config.has("output_dim"))
    config.fail("config key 'output_dim' is missing; give the length of each embedding vector, e.g. 64");
  output_dim_ = config.require_int("output_dim");
  if (output_dim_ < 1)
    config.fail("config key 'output_dim' must be a positive integer, got " + std::to_string(output_dim_));
  if (config.get_bool("mask_zero", false))
    config.fail(
        "config key 'mask_zero' is true, but masking is not supported: lamina has no masks, so index 0 "
        "would be embedded like any other. Use \"mask_zero\": false (padding then counts as a token)");
  if (config.has("input_length")) {
    input_length_ = config.require_int("input_length");
    if (input_length_ < 1)
      config.fail("config key 'input_length' must be a positive integer, got " +
                  std::to_string(input_length_));
  }
  if (config.has("lora_rank"))
    config.fail("config key 'lora_rank' is set, but LoRA is not supported; use null");
  embeddings_initializer_ = read_initializer(config, "embeddings_initializer", "uniform");
  regularizers_ =
      keep_regularizers(config, {"embeddings_regularizer", "activity_regularizer", "embeddings_constraint"});
}

// input_length only where it was given: tf_keras reads it, Keras 3 warns about it.
std::string Embedding::get_config() const {
  json::object o{{"input_dim", input_dim_},
                 {"output_dim", output_dim_},
                 {"embeddings_initializer", embeddings_initializer_},
                 {"mask_zero", false}};
  if (input_length_ > 0) o["input_length"] = input_length_;
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape Embedding::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  if (input_length_ > 0 && !(input_shape.size() == 1 && input_shape[0] == input_length_))
    throw sdk::Error(label_ + ": input_length is " + std::to_string(input_length_) +
                     " but the input has shape " + shape_text(input_shape) +
                     "; make them agree or leave input_length out");
  builder.add_weight("embeddings", {input_dim_, output_dim_}, json::serialize(embeddings_initializer_));
  Shape out = input_shape;
  out.push_back(output_dim_);
  return out;
}

sdk::Tensor Embedding::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                            const sdk::Tensor& input) {
  if (weights.size() != 1)
    throw sdk::Error(label_ + ": expected 1 weight, got " + std::to_string(weights.size()));
  try {
    return sdk::ops::gather(weights[0], input);
  } catch (const sdk::Error& e) {
    throw sdk::Error(label_ + " (input_dim " + std::to_string(input_dim_) + "): " + e.what());
  }
}

}  // namespace lamina::layers
