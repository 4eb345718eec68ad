#include "normalization_layers.hpp"

namespace lamina::layers {

namespace {

// Keys only one Keras flavour writes. Written back only when the config had them, so that a saved
// model loads in the Keras it came from (an older Keras refuses keys it does not know).
constexpr const char* kFlavourKeys[] = {"synchronized", "renorm", "renorm_clipping", "renorm_momentum",
                                        "virtual_batch_size"};

}  // namespace

BatchNormalization::BatchNormalization(const std::string& config_json) {
  Config config(config_json, "BatchNormalization");
  label_ = layer_label("BatchNormalization", config);
  axis_ = read_axis(config, json::value(-1));
  if (axis_.axes.size() != 1)
    config.fail("config key 'axis' must name one axis (the features), got " + value_text(axis_.raw));
  momentum_ = config.get_float("momentum", 0.99);
  if (!(momentum_ >= 0.0 && momentum_ <= 1.0))
    config.fail("config key 'momentum' must be in [0, 1] (Keras' default is 0.99), got " +
                value_text(config.object().at("momentum")));
  epsilon_ = read_epsilon(config);
  center_ = config.get_bool("center", true);
  scale_ = config.get_bool("scale", true);
  frozen_ = !config.get_bool("trainable", true);
  beta_initializer_ = read_initializer(config, "beta_initializer", "zeros");
  gamma_initializer_ = read_initializer(config, "gamma_initializer", "ones");
  moving_mean_initializer_ = read_initializer(config, "moving_mean_initializer", "zeros");
  moving_variance_initializer_ = read_initializer(config, "moving_variance_initializer", "ones");
  regularizers_ = keep_regularizers(config, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});

  if (config.get_bool("renorm", false))
    config.fail("config key 'renorm' is true: batch renormalization is not supported; set \"renorm\": false");
  if (config.has("virtual_batch_size"))
    config.fail(
        "config key 'virtual_batch_size' is not supported; set it to null (statistics of the whole batch)");
  if (config.get_bool("synchronized", false))
    warn(label_ +
         ": synchronized is true, but lamina does not share batch statistics between the ranks of a "
         "data-parallel job: each rank normalizes with its own share of the batch");
  for (const char* key : kFlavourKeys)
    if (const json::value* v = config.object().if_contains(key)) passed_on_[key] = *v;
}

std::string BatchNormalization::get_config() const {
  json::object o{{"axis", axis_.raw},
                 {"momentum", momentum_},
                 {"epsilon", epsilon_},
                 {"center", center_},
                 {"scale", scale_},
                 {"beta_initializer", beta_initializer_},
                 {"gamma_initializer", gamma_initializer_},
                 {"moving_mean_initializer", moving_mean_initializer_},
                 {"moving_variance_initializer", moving_variance_initializer_}};
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  for (const auto& kv : passed_on_) o[kv.key()] = kv.value();
  return sdk::to_json(o);
}

Shape BatchNormalization::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  position_ = resolve_axes(label_, axis_.axes, input_shape)[0];
  const Shape features{input_shape[size_t(position_ - 1)]};
  if (scale_) builder.add_weight("gamma", features, json::serialize(gamma_initializer_));
  if (center_) builder.add_weight("beta", features, json::serialize(beta_initializer_));
  builder.add_weight("moving_mean", features, json::serialize(moving_mean_initializer_), false);
  builder.add_weight("moving_variance", features, json::serialize(moving_variance_initializer_), false);
  return input_shape;
}

// The features on the last axis (NHWC images, (batch, features) vectors): the batch-normalization
// ops, which a backend runs with its own primitives (oneDNN's and cuDNN's batch normalization) and
// the others through the ops' composition. Without gamma or beta, ones or zeros stand in.
sdk::Tensor BatchNormalization::call_channels_last(const sdk::CallContext& context,
                                                   const std::vector<sdk::Tensor>& weights,
                                                   const sdk::Tensor& x) {
  namespace ops = sdk::ops;
  const Shape features{x.shape().back()};
  size_t next = 0;
  const sdk::Tensor gamma = scale_ ? weights.at(next++) : ops::full(features, 1.0f);
  const sdk::Tensor beta = center_ ? weights.at(next++) : ops::full(features, 0.0f);
  const sdk::Tensor &moving_mean = weights.at(next), &moving_variance = weights.at(next + 1);
  if (!context.training || frozen_)
    return ops::batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, epsilon_);
  ops::BatchNormResult r = ops::batch_norm_train(x, gamma, beta, epsilon_);
  move_statistics(moving_mean, moving_variance, r.mean, r.variance);
  return r.y;
}

// moving = momentum·moving + (1 − momentum)·batch, with the biased variance as Keras 3. The
// assignment is a copy launch that step replay records and repeats.
void BatchNormalization::move_statistics(const sdk::Tensor& moving_mean, const sdk::Tensor& moving_variance,
                                         const sdk::Tensor& mean, const sdk::Tensor& variance) const {
  namespace ops = sdk::ops;
  ops::assign(moving_mean, ops::add(ops::scale(moving_mean, momentum_), ops::scale(mean, 1.0 - momentum_)));
  ops::assign(moving_variance,
              ops::add(ops::scale(moving_variance, momentum_), ops::scale(variance, 1.0 - momentum_)));
}

// Features on another axis: a composition of element-wise ops and reductions.
// x: (batch, ...) with `features` values along axis p. Every per-feature tensor is reshaped to
// x's rank, size 1 on every axis but p, to broadcast against x.
sdk::Tensor BatchNormalization::call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                                     const sdk::Tensor& x) {
  namespace ops = sdk::ops;
  const Shape shape = x.shape();
  if (position_ == int64_t(shape.size()) - 1) return call_channels_last(context, weights, x);
  Shape per_feature(shape.size(), 1), others;
  per_feature[size_t(position_)] = shape[size_t(position_)];
  for (int64_t a = 0; a < int64_t(shape.size()); ++a)
    if (a != position_) others.push_back(a);
  size_t next = 0;
  const sdk::Tensor gamma = scale_ ? ops::reshape(weights.at(next++), per_feature) : sdk::Tensor();
  const sdk::Tensor beta = center_ ? ops::reshape(weights.at(next++), per_feature) : sdk::Tensor();
  const sdk::Tensor &moving_mean = weights.at(next), &moving_variance = weights.at(next + 1);

  // inv = gamma / √(variance + epsilon), per feature
  auto inverse = [&](const sdk::Tensor& variance) {
    const sdk::Tensor root = ops::sqrt(ops::scale(variance, 1.0, epsilon_));
    return ops::div(gamma ? gamma : ops::full(per_feature, 1.0f), root);
  };

  if (!context.training || frozen_) {  // y = x·inv + (beta − moving_mean·inv): two passes over x
    const sdk::Tensor inv = inverse(ops::reshape(moving_variance, per_feature));
    sdk::Tensor shift = ops::neg(ops::mul(ops::reshape(moving_mean, per_feature), inv));
    if (beta) shift = ops::add(shift, beta);
    return ops::add(ops::mul(x, inv), shift);
  }

  // The batch's statistics, differentiated through (the full batch-norm gradient).
  const sdk::Tensor mean = mean_over(x, others);
  const sdk::Tensor centered = ops::sub(x, mean);
  const sdk::Tensor variance = mean_over(ops::square(centered), others);  // biased, as Keras
  sdk::Tensor y = ops::mul(centered, inverse(variance));
  if (beta) y = ops::add(y, beta);

  const Shape features{shape[size_t(position_)]};
  move_statistics(moving_mean, moving_variance, ops::reshape(mean, features),
                  ops::reshape(variance, features));
  return y;
}

}  // namespace lamina::layers
