// The built-in Keras optimizers. Each update is one in-place update op per parameter (sgd_update,
// adadelta_update, adam_update, rmsprop_update; docs/ops.md), so it runs on whichever backend holds
// the parameters, and the core composes it from basic ops on a backend without that kernel.
#pragma once

#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace lamina::optimizers {

namespace json = boost::json;
using sdk::Config;
using sdk::Tensor;

// What every Keras optimizer config shares: name, learning rate (Keras 2's `lr` too), Keras 2's
// time decay, and Keras 3's clipnorm, clipvalue and weight_decay, applied as Keras 3 applies them.
// The other keys Keras writes (sdk::kKerasOptimizerKeys) are accepted; those lamina does not apply
// draw a warning when set (docs/config.md). Any other key is an error naming it.
class KerasOptimizer : public sdk::Optimizer {
 public:
  double learning_rate() const override { return learning_rate_; }
  void set_learning_rate(double value) override { learning_rate_ = value; }
  std::optional<std::vector<std::string>> config_keys() const override { return keys_; }

 protected:
  // `own_keys`: the subclass's config keys, besides the shared ones above.
  KerasOptimizer(const Config& config, const char* class_name, const char* default_name,
                 double default_learning_rate, std::initializer_list<const char*> own_keys);
  // Before the update, as Keras 3 does: the weight decay (p -= p · weight_decay · lr) applied to the
  // parameter in place, and the gradient clipped (by its norm, clipnorm, or elementwise, clipvalue).
  // Returns the gradient to apply.
  Tensor prepare(const Tensor& parameter, const Tensor& gradient, int64_t iteration) const;
  // The rate for step `iteration` (counting from 1). Keras 2 decays it by time,
  // lr / (1 + decay * k), where k counts the steps taken before this one. tf.keras 2.11+ and Keras 3
  // dropped `decay`, so a nonzero value only comes from Keras 2 configs and follows Keras 2.
  double learning_rate_at(int64_t iteration) const;
  // name, learning_rate and (when nonzero) decay; the subclass adds its own keys.
  json::object base_config() const;
  void expect_slots(const std::vector<Tensor>& slots, size_t n) const;
  // For keys whose value must lie in [low, high] (or [low, high) when `open_high`).
  double read_fraction(const Config& config, const char* key, double fallback, double low, double high,
                       bool open_high) const;
  std::string label_;

 private:
  std::string name_;
  std::vector<std::string> keys_;
  double learning_rate_ = 0.0;
  double decay_ = 0.0;
  double clipnorm_ = 0.0;  // 0: not set
  double clipvalue_ = 0.0;
  double weight_decay_ = 0.0;
};

class SGD final : public KerasOptimizer {
 public:
  explicit SGD(const std::string& config_json) : SGD(Config(config_json, "SGD")) {}
  std::string get_config() const override;
  std::vector<std::string> slot_names() const override;
  void apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
             int64_t iteration) override;

 private:
  explicit SGD(const Config& config);
  double momentum_ = 0.0;
  bool nesterov_ = false;
};

class Adadelta final : public KerasOptimizer {
 public:
  explicit Adadelta(const std::string& config_json) : Adadelta(Config(config_json, "Adadelta")) {}
  std::string get_config() const override;
  std::vector<std::string> slot_names() const override;
  void apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
             int64_t iteration) override;

 private:
  explicit Adadelta(const Config& config);
  double rho_ = 0.95;
  double epsilon_ = 1e-7;
};

class Adam final : public KerasOptimizer {
 public:
  explicit Adam(const std::string& config_json) : Adam(Config(config_json, "Adam")) {}
  std::string get_config() const override;
  std::vector<std::string> slot_names() const override;
  void apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
             int64_t iteration) override;

 private:
  explicit Adam(const Config& config);
  double beta_1_ = 0.9;
  double beta_2_ = 0.999;
  double epsilon_ = 1e-7;
  bool amsgrad_ = false;
};

class RMSprop final : public KerasOptimizer {
 public:
  explicit RMSprop(const std::string& config_json) : RMSprop(Config(config_json, "RMSprop")) {}
  std::string get_config() const override;
  std::vector<std::string> slot_names() const override;
  void apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
             int64_t iteration) override;

 private:
  explicit RMSprop(const Config& config);
  double rho_ = 0.9;
  double momentum_ = 0.0;
  double epsilon_ = 1e-7;
};

}  // namespace lamina::optimizers
