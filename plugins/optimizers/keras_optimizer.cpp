#include "keras_optimizer.hpp"

#include <cmath>
#include <cstdio>

namespace lamina::optimizers {

namespace {

void warn(const std::string& message) {
  if (sdk::host_table() && sdk::host_table()->log) sdk::host_table()->log(2, message.c_str());
}

std::string number_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

std::string value_text(const json::value& v) {
  return v.is_double() ? number_text(v.as_double()) : json::serialize(v);
}

bool is_set(const json::value* v) {
  if (!v || v->is_null()) return false;
  if (v->is_bool()) return v->as_bool();
  if (v->is_number()) return v->to_number<double>() != 0.0;
  return true;
}

}  // namespace

KerasOptimizer::KerasOptimizer(const Config& config, const char* class_name, const char* default_name,
                               double default_learning_rate, std::initializer_list<const char*> own_keys)
    : name_(config.name().empty() ? default_name : config.name()) {
  label_ = class_name;
  if (!config.name().empty()) label_ += " '" + config.name() + "'";
  keys_ = {"learning_rate", "lr"};
  keys_.insert(keys_.end(), own_keys.begin(), own_keys.end());
  const char* key = config.has("learning_rate") ? "learning_rate" : "lr";
  if (config.has(key) && config.object().at(key).is_object())
    config.fail(std::string("config key '") + key +
                "' holds a learning-rate schedule, which is not supported yet; give a number");
  learning_rate_ = config.get_float(key, default_learning_rate);
  if (!(learning_rate_ >= 0.0) || !std::isfinite(learning_rate_))
    config.fail(std::string("config key '") + key + "' must be a non-negative number, got " +
                value_text(config.object().at(key)));
  auto non_negative = [&](const char* k) {
    const double v = config.get_float(k, 0.0);
    if (!(v >= 0.0) || !std::isfinite(v))
      config.fail(std::string("config key '") + k + "' must be a non-negative number, got " +
                  value_text(config.object().at(k)));
    return v;
  };
  decay_ = non_negative("decay");
  clipnorm_ = non_negative("clipnorm");
  clipvalue_ = non_negative("clipvalue");
  weight_decay_ = non_negative("weight_decay");
  // Keras refuses more than one way of clipping.
  if (int(clipnorm_ > 0) + int(clipvalue_ > 0) + int(is_set(config.object().if_contains("global_clipnorm"))) >
      1)
    config.fail("only one of 'clipnorm', 'clipvalue' and 'global_clipnorm' can be set, as in Keras");
  // Keras 3 adds these to every config; at their defaults (null, 0, false) they are no-ops, and
  // anything else changes training in a way lamina does not reproduce yet.
  for (const char* k : {"global_clipnorm", "use_ema"})
    if (is_set(config.object().if_contains(k)))
      warn(label_ + ": " + k + " " + value_text(config.object().at(k)) +
           " is ignored; lamina does not apply it");
  if (const json::value* v = config.object().if_contains("gradient_accumulation_steps");
      v && v->is_number() && v->to_number<double>() > 1)
    warn(label_ + ": gradient_accumulation_steps " + json::serialize(*v) +
         " is ignored; lamina updates every step");
}

Tensor KerasOptimizer::prepare(const Tensor& parameter, const Tensor& gradient, int64_t iteration) const {
  if (weight_decay_ > 0.0)
    sdk::ops::assign(parameter,
                     sdk::ops::scale(parameter, 1.0 - weight_decay_ * learning_rate_at(iteration)));
  if (clipvalue_ > 0.0) return sdk::ops::clip(gradient, -clipvalue_, clipvalue_);
  if (clipnorm_ > 0.0) {
    // g · clipnorm / max(‖g‖, clipnorm): Keras' clip_by_norm, per parameter
    sdk::Shape axes;
    for (int64_t d = 0; d < int64_t(gradient.shape().size()); ++d) axes.push_back(d);
    const Tensor norm = axes.empty() ? sdk::ops::abs(gradient)
                                     : sdk::ops::sqrt(sdk::ops::reduce_sum(sdk::ops::square(gradient), axes));
    const Tensor limit = sdk::ops::full({}, float(clipnorm_));
    return sdk::ops::div(sdk::ops::mul(gradient, limit), sdk::ops::maximum(norm, limit));
  }
  return gradient;
}

double KerasOptimizer::learning_rate_at(int64_t iteration) const {
  if (decay_ == 0.0) return learning_rate_;
  return learning_rate_ / (1.0 + decay_ * double(iteration - 1));
}

json::object KerasOptimizer::base_config() const {
  json::object o{{"name", name_}, {"learning_rate", learning_rate_}};
  // Keras 2 writes decay 0.0, but tf.keras 2.11+ optimizers raise on the key, so it only appears
  // when it matters.
  if (decay_ != 0.0) o["decay"] = decay_;
  if (clipnorm_ > 0.0) o["clipnorm"] = clipnorm_;
  if (clipvalue_ > 0.0) o["clipvalue"] = clipvalue_;
  if (weight_decay_ > 0.0) o["weight_decay"] = weight_decay_;
  return o;
}

void KerasOptimizer::expect_slots(const std::vector<Tensor>& slots, size_t n) const {
  if (slots.size() != n)
    throw sdk::Error(label_ + ": expected " + std::to_string(n) + " slots, got " +
                     std::to_string(slots.size()));
}

double KerasOptimizer::read_fraction(const Config& config, const char* key, double fallback, double low,
                                     double high, bool open_high) const {
  double v = config.get_float(key, fallback);
  if (!(v >= low && (open_high ? v < high : v <= high)))
    config.fail(std::string("config key '") + key + "' must be in [" + number_text(low) + ", " +
                number_text(high) + (open_high ? ")" : "]") + ", got " + value_text(config.object().at(key)));
  return v;
}

}  // namespace lamina::optimizers
