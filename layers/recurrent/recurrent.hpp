// Keras LSTM and GRU over (steps, features) inputs, and Bidirectional around either. Each is a
// composition of existing ops (matmul, add, mul, slice, concat and the activations), so it runs on
// every backend and autograd differentiates it: the input projection x·W (+ b) for every step in one
// matmul, then one small step per time step, looped on the host. docs/sequences.md.
#pragma once

#include "../common/keras_layer.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lamina::layers {

// One LSTM or GRU: its config, its weights (kernel, recurrent_kernel, bias, under a cell name) and
// the loop over the steps. LSTM and GRU (the layers) and Bidirectional (twice) are built on it.
class RecurrentCore {
 public:
  enum class Kind { lstm, gru };
  // `class_name` is "LSTM" or "GRU"; throws with the layer and key for a bad config.
  RecurrentCore(const std::string& config_json, Kind kind);

  json::object config() const;  // the Keras keys, without the common ones (name, trainable, dtype)
  const std::string& name() const { return name_; }
  const std::string& label() const { return label_; }
  const char* class_name() const { return kind_ == Kind::lstm ? "LSTM" : "GRU"; }
  bool return_sequences() const { return return_sequences_; }
  bool go_backwards() const { return go_backwards_; }
  int64_t units() const { return units_; }

  // Declares kernel, recurrent_kernel and bias as `prefix` + "lstm_cell/kernel" and so on (Keras'
  // names), for inputs of `features` per step.
  void declare(sdk::LayerBuilder& builder, const std::string& prefix, int64_t features) const;
  size_t weight_count() const { return use_bias_ ? 3 : 2; }
  // Output shape per sample for (steps, features) inputs.
  Shape output_shape(const Shape& input) const;
  // The hidden states of every step, in the order of time (x's order, whichever way the layer
  // runs); `weights` from `first` on are this layer's.
  std::vector<sdk::Tensor> run(const std::vector<sdk::Tensor>& weights, size_t first,
                               const sdk::Tensor& x) const;
  // The layer's output from run()'s states: (N, steps, units) in processing order (reversed under
  // go_backwards, as Keras returns it; `flip`: the other way round) with return_sequences, else the
  // last state processed.
  sdk::Tensor output(const std::vector<sdk::Tensor>& states, bool flip = false) const;

 private:
  Kind kind_;
  std::string name_;
  std::string label_;
  int64_t units_ = 0;
  std::string activation_;
  std::string recurrent_activation_;
  bool use_bias_ = true;
  bool return_sequences_ = false;
  bool go_backwards_ = false;
  bool unit_forget_bias_ = true;  // LSTM
  bool reset_after_ = true;       // GRU
  json::value kernel_initializer_;
  json::value recurrent_initializer_;
  json::value bias_initializer_;
  json::object regularizers_;
};

class LSTM final : public sdk::Layer {
 public:
  explicit LSTM(const std::string& config_json) : core_(config_json, RecurrentCore::Kind::lstm) {}
  std::string get_config() const override { return sdk::to_json(core_.config()); }
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  RecurrentCore core_;
};

class GRU final : public sdk::Layer {
 public:
  explicit GRU(const std::string& config_json) : core_(config_json, RecurrentCore::Kind::gru) {}
  std::string get_config() const override { return sdk::to_json(core_.config()); }
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  RecurrentCore core_;
};

// Keras Bidirectional(layer, merge_mode, backward_layer): the layer over the sequence and a copy
// (or backward_layer) over it reversed, merged by concat, sum, mul or ave. Wraps LSTM and GRU.
class Bidirectional final : public sdk::Layer {
 public:
  explicit Bidirectional(const std::string& config_json);
  std::string get_config() const override;
  Shape build(sdk::LayerBuilder& builder, const Shape& input_shape) override;
  sdk::Tensor call(const sdk::CallContext& context, const std::vector<sdk::Tensor>& weights,
                   const sdk::Tensor& input) override;

 private:
  std::string label_;
  std::string merge_mode_;
  json::value layer_json_;           // as given, for get_config
  json::value backward_layer_json_;  // null when Keras derives it
  std::unique_ptr<RecurrentCore> forward_;
  std::unique_ptr<RecurrentCore> backward_;
  std::string forward_name_;
  std::string backward_name_;
};

}  // namespace lamina::layers
