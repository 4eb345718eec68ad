#include "recurrent.hpp"

#include <algorithm>

namespace lamina::layers {

namespace ops = sdk::ops;

namespace {

// A recurrent setting lamina does not implement: refused with the key and what to use instead.
void refuse_true(const Config& config, const char* key, const std::string& why) {
  if (config.get_bool(key, false)) config.fail("config key '" + std::string(key) + "' is true, but " + why);
}

std::string read_named_activation(const Config& config, const char* key, const char* fallback) {
  std::string name = config.get_string(key, fallback);
  if (!sdk::is_activation(name))
    config.fail("config key '" + std::string(key) + "' is '" + name +
                "', which lamina does not provide; use one of " + sdk::activation_names());
  return name;
}

// Columns [from, to) of a rank-2 tensor.
sdk::Tensor columns(const sdk::Tensor& x, int64_t from, int64_t to) {
  return ops::slice(x, {1}, {from}, {to});
}

}  // namespace

RecurrentCore::RecurrentCore(const std::string& config_json, Kind kind) : kind_(kind) {
  const char* cls = class_name();
  Config config(config_json, cls);
  name_ = config.name();
  label_ = layer_label(cls, config);
  if (!config.has("units")) config.fail("config key 'units' is missing; give the size of the state, e.g. 32");
  units_ = config.require_int("units");
  if (units_ < 1) config.fail("config key 'units' must be a positive integer, got " + std::to_string(units_));
  activation_ = read_named_activation(config, "activation", "tanh");
  recurrent_activation_ = read_named_activation(config, "recurrent_activation", "sigmoid");
  use_bias_ = config.get_bool("use_bias", true);
  return_sequences_ = config.get_bool("return_sequences", false);
  go_backwards_ = config.get_bool("go_backwards", false);
  refuse_true(config, "return_state",
              "lamina's recurrent layers return one tensor; use \"return_state\": false");
  refuse_true(config, "stateful", "lamina keeps no state between batches; use \"stateful\": false");
  refuse_true(config, "time_major",
              "lamina's sequences are (batch, steps, features); use \"time_major\": false");
  for (const char* key : {"dropout", "recurrent_dropout"}) {
    double rate = config.get_float(key, 0.0);
    if (rate != 0.0)
      config.fail(
          "config key '" + std::string(key) + "' is " + value_text(json::value(rate)) +
          ", but dropout inside recurrent layers is not supported yet; use 0 (a Dropout layer before or "
          "after the recurrent layer works)");
  }
  // unroll and implementation only choose how Keras computes the same result.
  if (kind_ == Kind::lstm) unit_forget_bias_ = config.get_bool("unit_forget_bias", true);
  if (kind_ == Kind::gru) reset_after_ = config.get_bool("reset_after", true);
  kernel_initializer_ = read_initializer(config, "kernel_initializer", "glorot_uniform");
  recurrent_initializer_ = read_initializer(config, "recurrent_initializer", "orthogonal");
  bias_initializer_ = read_initializer(config, "bias_initializer", "zeros");
  regularizers_ = keep_regularizers(
      config, {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
               "kernel_constraint", "recurrent_constraint", "bias_constraint"});
}

json::object RecurrentCore::config() const {
  json::object o{{"return_sequences", return_sequences_},
                 {"return_state", false},
                 {"go_backwards", go_backwards_},
                 {"stateful", false},
                 {"unroll", false},
                 {"units", units_},
                 {"activation", activation_},
                 {"recurrent_activation", recurrent_activation_},
                 {"use_bias", use_bias_},
                 {"kernel_initializer", kernel_initializer_},
                 {"recurrent_initializer", recurrent_initializer_},
                 {"bias_initializer", bias_initializer_}};
  if (kind_ == Kind::lstm) o["unit_forget_bias"] = unit_forget_bias_;
  for (const auto& kv : regularizers_) o[kv.key()] = kv.value();
  o["dropout"] = 0.0;
  o["recurrent_dropout"] = 0.0;
  if (kind_ == Kind::gru) o["reset_after"] = reset_after_;
  return o;
}

void RecurrentCore::declare(sdk::LayerBuilder& builder, const std::string& prefix, int64_t features) const {
  const std::string cell = prefix + (kind_ == Kind::lstm ? "lstm_cell/" : "gru_cell/");
  const int64_t width = (kind_ == Kind::lstm ? 4 : 3) * units_;
  builder.add_weight((cell + "kernel").c_str(), {features, width}, json::serialize(kernel_initializer_));
  builder.add_weight((cell + "recurrent_kernel").c_str(), {units_, width},
                     json::serialize(recurrent_initializer_));
  if (!use_bias_) return;
  if (kind_ == Kind::gru) {
    builder.add_weight((cell + "bias").c_str(), reset_after_ ? Shape{2, width} : Shape{width},
                       json::serialize(bias_initializer_));
  } else if (unit_forget_bias_) {
    // Keras: the bias initializer for the input gate, ones for the forget gate, the initializer again
    // for the cell and output gates.
    json::array blocks{json::object{{"size", units_}, {"initializer", bias_initializer_}},
                       json::object{{"size", units_}, {"initializer", "ones"}},
                       json::object{{"size", 2 * units_}, {"initializer", bias_initializer_}}};
    json::object init{{"class_name", "lamina_blocks"}, {"config", json::object{{"blocks", blocks}}}};
    builder.add_weight((cell + "bias").c_str(), {width}, json::serialize(init));
  } else {
    builder.add_weight((cell + "bias").c_str(), {width}, json::serialize(bias_initializer_));
  }
}

Shape RecurrentCore::output_shape(const Shape& input) const {
  require_sequence_input(label_, input);
  return return_sequences_ ? Shape{input[0], units_} : Shape{units_};
}

std::vector<sdk::Tensor> RecurrentCore::run(const std::vector<sdk::Tensor>& weights, size_t first,
                                            const sdk::Tensor& x) const {
  if (weights.size() < first + weight_count())
    throw sdk::Error(label_ + ": expected " + std::to_string(weight_count()) + " weights, got " +
                     std::to_string(weights.size() - std::min(weights.size(), first)));
  const Shape s = x.shape();
  if (s.size() != 3)
    throw sdk::Error(label_ + ": expects a batch of sequences (N, steps, features), got " + shape_text(s));
  const int64_t n = s[0], steps = s[1], features = s[2], u = units_;
  const int64_t width = (kind_ == Kind::lstm ? 4 : 3) * u;
  const sdk::Tensor& kernel = weights[first];
  const sdk::Tensor& recurrent = weights[first + 1];
  if (kernel.shape() != Shape{features, width})
    throw sdk::Error(label_ + ": kernel has shape " + shape_text(kernel.shape()) + " but inputs have " +
                     std::to_string(features) + " features");

  // The input's share of every gate, for every step at once: (N, steps, width).
  sdk::Tensor flat = ops::reshape(x, {n * steps, features});
  sdk::Tensor input_bias, recurrent_bias;  // GRU reset_after: the bias's rows 0 and 1
  if (use_bias_) {
    const sdk::Tensor& bias = weights[first + 2];
    if (kind_ == Kind::gru && reset_after_) {
      input_bias = ops::reshape(ops::slice(bias, {0}, {0}, {1}), {width});
      recurrent_bias = ops::slice(bias, {0}, {1}, {2});  // (1, width): added to every row
    } else {
      input_bias = bias;
    }
  }
  sdk::Tensor projected = use_bias_ ? ops::matmul_bias(flat, kernel, input_bias) : ops::matmul(flat, kernel);
  projected = ops::reshape(projected, {n, steps, width});

  // GRU without reset_after multiplies the reset gate in before the candidate's product.
  sdk::Tensor recurrent_zr, recurrent_h;
  if (kind_ == Kind::gru && !reset_after_) {
    recurrent_zr = columns(recurrent, 0, 2 * u);
    recurrent_h = columns(recurrent, 2 * u, 3 * u);
  }
  auto act = [&](const sdk::Tensor& t) { return sdk::apply_activation(activation_, t); };
  auto gate = [&](const sdk::Tensor& t) { return sdk::apply_activation(recurrent_activation_, t); };

  std::vector<sdk::Tensor> states(static_cast<size_t>(steps));
  // Zero initial states: the LSTM's first step needs none (h·U and f·c vanish), the GRU's reads h.
  sdk::Tensor h, c;
  if (kind_ == Kind::gru) h = ops::full({n, u}, 0.0f);
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = go_backwards_ ? steps - 1 - k : k;
    sdk::Tensor xt = ops::reshape(ops::slice(projected, {1}, {t}, {t + 1}), {n, width});
    if (kind_ == Kind::lstm) {
      // gates i, f, c, o (Keras' order)
      sdk::Tensor z = k == 0 ? xt : ops::add(xt, ops::matmul(h, recurrent));
      sdk::Tensor i = gate(columns(z, 0, u)), f = gate(columns(z, u, 2 * u));
      sdk::Tensor g = act(columns(z, 2 * u, 3 * u)), o = gate(columns(z, 3 * u, 4 * u));
      c = k == 0 ? ops::mul(i, g) : ops::add(ops::mul(f, c), ops::mul(i, g));
      h = ops::mul(o, act(c));
    } else {
      // gates z, r and the candidate h (Keras' order); h = z·h_prev + (1 - z)·candidate
      sdk::Tensor xz = columns(xt, 0, u), xr = columns(xt, u, 2 * u), xh = columns(xt, 2 * u, 3 * u);
      sdk::Tensor candidate, z;
      if (reset_after_) {
        sdk::Tensor hu = ops::matmul(h, recurrent);
        if (use_bias_) hu = ops::add(hu, recurrent_bias);
        z = gate(ops::add(xz, columns(hu, 0, u)));
        sdk::Tensor r = gate(ops::add(xr, columns(hu, u, 2 * u)));
        candidate = act(ops::add(xh, ops::mul(r, columns(hu, 2 * u, 3 * u))));
      } else {
        sdk::Tensor hu = ops::matmul(h, recurrent_zr);
        z = gate(ops::add(xz, columns(hu, 0, u)));
        sdk::Tensor r = gate(ops::add(xr, columns(hu, u, 2 * u)));
        candidate = act(ops::add(xh, ops::matmul(ops::mul(r, h), recurrent_h)));
      }
      h = ops::add(candidate, ops::mul(z, ops::sub(h, candidate)));
    }
    states[size_t(t)] = h;
  }
  return states;
}

namespace {

// (N, steps, units) from per-step (N, units) states, in the order given.
sdk::Tensor stack(const std::vector<sdk::Tensor>& states) {
  std::vector<sdk::Tensor> parts;
  for (const sdk::Tensor& h : states) {
    Shape s = h.shape();
    parts.push_back(ops::reshape(h, {s[0], 1, s[1]}));
  }
  return ops::concat(parts, 1);
}

}  // namespace

sdk::Tensor RecurrentCore::output(const std::vector<sdk::Tensor>& states, bool flip) const {
  if (!return_sequences_) return go_backwards_ ? states.front() : states.back();
  if (go_backwards_ == flip) return stack(states);
  return stack(std::vector<sdk::Tensor>(states.rbegin(), states.rend()));
}

Shape LSTM::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  Shape out = core_.output_shape(input_shape);
  core_.declare(builder, "", input_shape[1]);
  return out;
}

sdk::Tensor LSTM::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                       const sdk::Tensor& input) {
  return core_.output(core_.run(weights, 0, input));
}

Shape GRU::build(sdk::LayerBuilder& builder, const Shape& input_shape) {
  Shape out = core_.output_shape(input_shape);
  core_.declare(builder, "", input_shape[1]);
  return out;
}

sdk::Tensor GRU::call(const sdk::CallContext&, const std::vector<sdk::Tensor>& weights,
                      const sdk::Tensor& input) {
  return core_.output(core_.run(weights, 0, input));
}

}  // namespace lamina::layers
