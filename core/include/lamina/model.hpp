// Sequential models: add / compile / fit / evaluate / predict / summary, as in Keras.
#pragma once

#include <lamina/batches.hpp>
#include <lamina/tensor.hpp>

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lamina {

// A layer or optimizer by Keras class name and config; resolved through the plugins.
struct LayerSpec {
  std::string class_name;
  boost::json::object config;
};
struct OptimizerSpec {
  std::string class_name;
  boost::json::object config;
  OptimizerSpec() = default;
  OptimizerSpec(std::string name, boost::json::object cfg = {}) : class_name(std::move(name)), config(std::move(cfg)) {}
  OptimizerSpec(const char* name) : class_name(name) {}  // "sgd", "adadelta", ...
};

struct LayerPlugin;  // the plugin class behind a layer (internal)

// One layer of a built model.
class Layer {
 public:
  ~Layer();
  const std::string& name() const { return name_; }
  const std::string& class_name() const { return class_name_; }
  bool trainable() const { return trainable_; }
  const Shape& input_shape() const { return input_shape_; }    // without the batch dimension
  const Shape& output_shape() const { return output_shape_; }  // without the batch dimension
  // Keras order and shapes: Dense and Conv2D give {kernel, bias}.
  std::vector<Tensor> get_weights() const;
  void set_weights(const std::vector<Tensor>& weights);
  const std::vector<std::string>& weight_names() const { return weight_names_; }
  const std::vector<Tensor>& weights() const { return weights_; }
  int64_t count_params() const;
  // The layer's Keras config (its own keys plus name, trainable, dtype).
  boost::json::object get_config() const;
  Tensor call(const Tensor& input, bool training, uint64_t seed) const;

 private:
  friend class Sequential;
  friend struct LayerBuilderAccess;
  Layer() = default;
  std::string name_, class_name_;
  bool trainable_ = true;
  const LayerPlugin* plugin_ = nullptr;
  void* instance_ = nullptr;
  Shape input_shape_, output_shape_;
  std::vector<Tensor> weights_;
  std::vector<std::string> weight_names_;
  std::vector<bool> weight_trainable_;
};

struct CompileOptions {
  std::string loss = "mean_squared_error";
  OptimizerSpec optimizer = "rmsprop";
  std::vector<std::string> metrics;
  // The model outputs logits rather than probabilities (Keras' from_logits=True): the
  // crossentropy losses apply the softmax (sigmoid for binary) themselves.
  bool from_logits = false;
};

// An optimizer's state: what a model file stores so training resumes exactly where it stopped.
struct OptimizerState {
  OptimizerSpec optimizer;                // class name and the optimizer's full config
  int64_t iterations = 0;                 // update steps taken so far
  std::vector<std::string> slot_names;    // e.g. {"momentum", "velocity"} for Adam
  std::vector<std::string> weights;       // "layer/weight" of each trainable weight, model order
  std::vector<std::vector<Tensor>> slots; // per trainable weight, one tensor per slot name
};

// Where training stands, beyond the optimizer: what makes a resumed run continue exactly as an
// uninterrupted one would. A model's training draws its randomness (data order, dropout) from its
// own generator, seeded from the global one (set_random_seed) when fit() first runs.
struct TrainingState {
  int64_t epoch = 0;                // epochs completed
  std::string rng;                  // the generator's state (std::mt19937_64 text form); "" = not started
  std::vector<int64_t> data_order;  // the sample order the next epoch's shuffle starts from
};

// Per-epoch values, keyed like Keras: "loss", "accuracy", "val_loss", "val_accuracy".
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;
};

class Sequential;
struct Callback {
  virtual ~Callback() = default;
  virtual void on_train_begin(Sequential&) {}
  virtual void on_epoch_begin(Sequential&, int /*epoch*/) {}
  virtual void on_batch_end(Sequential&, int64_t /*batch*/, const std::map<std::string, double>& /*logs*/) {}
  virtual void on_epoch_end(Sequential&, int /*epoch*/, const std::map<std::string, double>& /*logs*/) {}
  virtual void on_train_end(Sequential&) {}
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  int verbose = 1;  // 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch
  bool shuffle = true;
  std::optional<std::pair<Tensor, Tensor>> validation_data;
  double validation_split = 0.0;  // the last fraction of x/y, before shuffling, as in Keras
  std::vector<std::shared_ptr<Callback>> callbacks;
  // Validation data read batch by batch (e.g. an H5Batches over a test split), instead of
  // validation_data.
  std::shared_ptr<BatchSource> validation_batches;
  // Keras' initial_epoch: epochs [initial_epoch, epochs) run, numbered from it (resuming a run).
  int initial_epoch = 0;
};

class Sequential {
 public:
  explicit Sequential(std::string name = "sequential");
  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;
  Sequential(Sequential&&) noexcept;
  Sequential& operator=(Sequential&&) noexcept;
  ~Sequential();

  // Adds a layer; the first needs an input shape (input_shape, input_dim, batch_input_shape or an
  // InputLayer before it).
  Sequential& add(const LayerSpec& layer);
  void compile(const CompileOptions& options);
  void compile(const std::string& loss, const OptimizerSpec& optimizer, std::vector<std::string> metrics = {}) {
    compile(CompileOptions{loss, optimizer, std::move(metrics)});
  }
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  // Training data read batch by batch (batches.hpp: e.g. H5Batches streams an HDF5 file larger
  // than memory); its own batch size applies, options.batch_size only to validation_data.
  History fit(BatchSource& data, const FitOptions& options = {});
  // {"loss": ..., "accuracy": ...}
  std::map<std::string, double> evaluate(const Tensor& x, const Tensor& y, int64_t batch_size = 32, int verbose = 0);
  std::map<std::string, double> evaluate(BatchSource& data, int verbose = 0);
  Tensor predict(const Tensor& x, int64_t batch_size = 32) const;
  // The output of layer `index` (0-based, Keras' model.layers order) for `x`.
  Tensor predict_until(const Tensor& x, size_t index, int64_t batch_size = 32) const;

  std::string summary() const;  // Keras' table, returned as text
  boost::json::object get_config() const;
  std::string to_json() const;  // Keras' model.to_json() format
  static Sequential from_config(const boost::json::value& model_config);

  const std::string& name() const { return name_; }
  size_t size() const { return layers_.size(); }
  Layer& layer(size_t index);
  const Layer& layer(size_t index) const;
  Layer& get_layer(const std::string& name);
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const;
  int64_t count_params() const;
  bool compiled() const;
  const CompileOptions& compile_options() const;
  double learning_rate() const;
  void set_learning_rate(double value);
  // The optimizer's state (slots share memory with the live ones); set_optimizer_state checks
  // counts and shapes and copies the values in. Both need a compiled model.
  OptimizerState optimizer_state() const;
  void set_optimizer_state(int64_t iterations, const std::vector<std::vector<Tensor>>& slots);
  // The training generator, data order and epoch count (saved with the optimizer state; restored by
  // load_model). set_training_state checks the generator text and that the order is a permutation.
  TrainingState training_state() const;
  void set_training_state(const TrainingState& state);

  // Keras' HDF5 model file (model.save("x.h5")): architecture, weights, training config and
  // optimizer state. The write is atomic: a temporary file beside `path`, then a rename.
  void save(const std::string& path, bool include_optimizer = true) const;
  // Weights only, in Keras 2's save_weights HDF5 layout.
  void save_weights(const std::string& path) const;
  // Weights from a save_weights file or a full model file, matched layer by layer in order.
  void load_weights(const std::string& path);
  bool stop_training = false;  // set by callbacks

 private:
  struct Training;
  Tensor forward(const Tensor& x, bool training, size_t until) const;
  Tensor forward(const Tensor& x, bool training, size_t until, uint64_t seed) const;
  std::string unique_name(const std::string& class_name);
  std::string name_;
  std::string input_name_;  // the InputLayer's name, when one was given
  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::map<std::string, int> name_counts_;
  std::unique_ptr<Training> training_;
};

// Builds a model from Keras' to_json() text (tf.keras, Keras 2.2 and Keras 3 envelopes).
Sequential model_from_json(const std::string& json_text);

// Reads a Keras HDF5 model file (Keras 2.x, tf.keras 2.x, Keras 3 legacy .h5, or lamina's own).
// With `compile`, a file holding a training config comes back compiled, with its optimizer state
// restored where the file's naming is recognised.
Sequential load_model(const std::string& path, bool compile = true);
// The compile options a model file's training_config describes (loss, metrics, optimizer), or
// nothing when it has none; for evaluating a model whose optimizer lamina lacks.
std::optional<CompileOptions> load_training_config(const std::string& path);

}  // namespace lamina
