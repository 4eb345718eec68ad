// Models as in Keras: Model is a graph of layer calls (the functional API), Sequential the graph
// that is one chain of layers; both compile / fit / evaluate / predict / save / summary alike.
#pragma once

#include <lamina/batches.hpp>
#include <lamina/tensor.hpp>

#include <boost/json.hpp>

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lamina {

class Layer;
class Model;
struct KerasTensor;
namespace graph {
struct Node;  // one call of a layer in a graph (internal)
}

// A symbolic tensor: what Input() and a layer call return while a graph model is built (Keras'
// KerasTensor). It holds no values; it knows its shape (without the batch dimension) and which
// call of which layer makes it.
struct KerasTensor {
  bool defined() const { return node != nullptr; }
  const Shape& shape() const;
  // The layer whose call makes it (for Input(), the InputLayer).
  const Layer& layer() const;
  std::shared_ptr<graph::Node> node;
  int index = 0;  // which of the node's outputs
};

// A model input: Input({28, 28, 1}, "image"). The shape is without the batch dimension.
KerasTensor Input(const Shape& shape, const std::string& name = "");

// A layer or optimizer by Keras class name and config; resolved through the plugins.
struct LayerSpec {
  std::string class_name;
  boost::json::object config;
  LayerSpec() = default;
  LayerSpec(std::string cls, boost::json::object cfg = {})
      : class_name(std::move(cls)), config(std::move(cfg)) {}
  // The functional API: calls the layer on symbolic tensors. The first call creates and builds the
  // layer; copies of this spec share it, so calling one spec twice shares its weights, as calling
  // one Keras layer object twice does.
  KerasTensor operator()(const KerasTensor& input) const;
  KerasTensor operator()(const std::vector<KerasTensor>& inputs) const;         // merge layers
  std::vector<KerasTensor> call(const std::vector<KerasTensor>& inputs) const;  // several outputs
  // The layer once the spec has been called, else null.
  std::shared_ptr<Layer> layer() const { return *instance_; }

 private:
  std::shared_ptr<std::shared_ptr<Layer>> instance_ = std::make_shared<std::shared_ptr<Layer>>();
};
struct OptimizerSpec {
  std::string class_name;
  boost::json::object config;
  OptimizerSpec() = default;
  OptimizerSpec(std::string name, boost::json::object cfg = {})
      : class_name(std::move(name)), config(std::move(cfg)) {}
  OptimizerSpec(const char* name) : class_name(name) {}  // "sgd", "adadelta", ...
};

struct LayerPlugin;  // the plugin class behind a layer (internal)
struct LayerTerms;   // a layer's regularizers and constraints (internal)

// One layer: a plugin instance with its weights, or a whole model used as a layer. A layer may be
// called several times (a shared layer) and belong to several models; its weights are the same
// tensors in each.
class Layer {
 public:
  ~Layer();
  const std::string& name() const { return name_; }
  const std::string& class_name() const { return class_name_; }
  bool trainable() const { return trainable_; }
  // Shapes of the first call, without the batch dimension (of the first input / output).
  const Shape& input_shape() const { return input_shapes_.at(0); }
  const Shape& output_shape() const { return output_shapes_.at(0); }
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  const std::vector<Shape>& output_shapes() const { return output_shapes_; }
  // The symbolic input / output of the layer's first call (Keras' layer.input / layer.output):
  // Model(model.input(), model.get_layer("conv2d_1").output()) cuts a feature extractor.
  KerasTensor input() const;
  KerasTensor output() const;
  // Keras order and shapes: Dense and Conv2D give {kernel, bias}.
  std::vector<Tensor> get_weights() const;
  void set_weights(const std::vector<Tensor>& weights);
  const std::vector<std::string>& weight_names() const { return weight_names_; }
  const std::vector<Tensor>& weights() const { return weights_; }
  bool weight_trainable(size_t index) const { return weight_trainable_.at(index); }
  int64_t count_params() const;
  // The layer's Keras config (its own keys plus name, trainable, dtype).
  boost::json::object get_config() const;
  bool is_input() const { return class_name_ == "InputLayer"; }
  // The model this layer is, when a model is used as a layer; else null.
  const Model* model() const { return model_.get(); }
  Tensor call(const Tensor& input, bool training, uint64_t seed) const;
  std::vector<Tensor> call(const std::vector<Tensor>& inputs, bool training, uint64_t seed) const;

 private:
  friend class Model;
  friend class Sequential;
  friend struct LayerAccess;
  Layer() = default;
  std::string name_, class_name_;
  bool trainable_ = true;
  const LayerPlugin* plugin_ = nullptr;
  void* instance_ = nullptr;
  std::shared_ptr<Model> model_;
  std::vector<Shape> input_shapes_, output_shapes_;
  std::vector<Tensor> weights_;
  std::vector<std::string> weight_names_;
  std::vector<bool> weight_trainable_;
  std::shared_ptr<const LayerTerms> terms_;        // regularizers and constraints; null when it has none
  std::vector<std::weak_ptr<graph::Node>> nodes_;  // the layer's calls, in order
};

struct CompileOptions {
  // The loss of every output, unless `losses` names one for an output.
  std::string loss = "mean_squared_error";
  OptimizerSpec optimizer = "rmsprop";
  std::vector<std::string> metrics;  // computed for every output
  // The model outputs logits rather than probabilities (Keras' from_logits=True): the
  // crossentropy losses apply the softmax (sigmoid for binary) themselves.
  bool from_logits = false;
  // Models with several outputs: a loss per output layer name (Keras' loss dict) and the weight of
  // each output's loss in the total (Keras' loss_weights; 1 when not given).
  std::map<std::string, std::string> losses;
  std::map<std::string, double> loss_weights;
};

// A model's inputs or targets: one tensor, a list in the order of the model's inputs (outputs),
// or a map from input (output) layer name, as Keras' fit / evaluate / predict take them.
struct Tensors {
  Tensors() = default;
  Tensors(const Tensor& t) : list{t} {}
  Tensors(std::vector<Tensor> l) : list(std::move(l)) {}
  Tensors(std::initializer_list<Tensor> l) : list(l) {}
  Tensors(std::map<std::string, Tensor> m) : named(std::move(m)) {}
  std::vector<Tensor> list;
  std::map<std::string, Tensor> named;
};

// An optimizer's state: what a model file stores so training resumes exactly where it stopped.
struct OptimizerState {
  OptimizerSpec optimizer;                 // class name and the optimizer's full config
  int64_t iterations = 0;                  // update steps taken so far
  std::vector<std::string> slot_names;     // e.g. {"momentum", "velocity"} for Adam
  std::vector<std::string> weights;        // "layer/weight" of each trainable weight, model order
  std::vector<std::vector<Tensor>> slots;  // per trainable weight, one tensor per slot name
};

// Which Keras is to restore a saved file's optimizer state. tf_keras and Keras 3 both put it back
// by position, in orders that no single file satisfies (docs/keras_files.md); lamina reads either.
enum class OptimizerLayout {
  tf_keras,  // tf.keras 2.x / tf_keras: restored whole, and training goes on from it
  keras3,    // Keras 3: its optimizer.variables (step, learning rate, slots) as Keras 3 lists them
};
struct SaveOptions {
  bool include_optimizer = true;  // the training config and the optimizer state
  OptimizerLayout optimizer_layout = OptimizerLayout::tf_keras;
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

struct Callback {
  virtual ~Callback() = default;
  virtual void on_train_begin(Model&) {}
  virtual void on_epoch_begin(Model&, int /*epoch*/) {}
  virtual void on_batch_end(Model&, int64_t /*batch*/, const std::map<std::string, double>& /*logs*/) {}
  virtual void on_epoch_end(Model&, int /*epoch*/, const std::map<std::string, double>& /*logs*/) {}
  virtual void on_train_end(Model&) {}
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  int verbose = 1;  // 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch
  bool shuffle = true;
  std::optional<std::pair<Tensors, Tensors>> validation_data;
  double validation_split = 0.0;  // the last fraction of x/y, before shuffling, as in Keras
  std::vector<std::shared_ptr<Callback>> callbacks;
  // Validation data read batch by batch (e.g. an H5Batches over a test split), instead of
  // validation_data.
  std::shared_ptr<BatchSource> validation_batches;
  // Keras' initial_epoch: epochs [initial_epoch, epochs) run, numbered from it (resuming a run).
  int initial_epoch = 0;
};

class Model {
 public:
  // A graph model from symbolic inputs to outputs (Keras' functional API):
  //   auto inputs = Input({28, 28, 1});
  //   auto x = Conv2D(32, {3, 3}, {.padding = "same", .activation = "relu"})(inputs);
  //   auto outputs = Dense(10, {.activation = "softmax"})(Flatten()(x));
  //   Model model(inputs, outputs);
  // The layers are those the outputs depend on; every path must start at one of the inputs.
  Model(const KerasTensor& inputs, const KerasTensor& outputs, std::string name = "");
  Model(std::vector<KerasTensor> inputs, std::vector<KerasTensor> outputs, std::string name = "");
  Model(std::vector<KerasTensor> inputs, const KerasTensor& output, std::string name = "")
      : Model(std::move(inputs), std::vector<KerasTensor>{output}, std::move(name)) {}
  Model(const KerasTensor& input, std::vector<KerasTensor> outputs, std::string name = "")
      : Model(std::vector<KerasTensor>{input}, std::move(outputs), std::move(name)) {}
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  virtual ~Model();

  // The model used as a layer of another graph (its weights are shared with this model).
  KerasTensor operator()(const KerasTensor& input) const;
  std::vector<KerasTensor> operator()(const std::vector<KerasTensor>& inputs) const;

  void compile(const CompileOptions& options);
  void compile(const std::string& loss, const OptimizerSpec& optimizer,
               std::vector<std::string> metrics = {}) {
    compile(CompileOptions{loss, optimizer, std::move(metrics)});
  }
  History fit(const Tensors& x, const Tensors& y, const FitOptions& options = {});
  // Training data read batch by batch (batches.hpp: e.g. H5Batches streams an HDF5 file larger
  // than memory); its own batch size applies, options.batch_size only to validation_data.
  History fit(BatchSource& data, const FitOptions& options = {});
  // {"loss": ..., "accuracy": ...}; with several outputs also "<output>_loss", "<output>_accuracy".
  std::map<std::string, double> evaluate(const Tensors& x, const Tensors& y, int64_t batch_size = 32,
                                         int verbose = 0);
  std::map<std::string, double> evaluate(BatchSource& data, int verbose = 0);
  // The output for `x` (a model with one output; predict_outputs gives every output).
  Tensor predict(const Tensors& x, int64_t batch_size = 32) const;
  std::vector<Tensor> predict_outputs(const Tensors& x, int64_t batch_size = 32) const;
  // The output of layer `index` (0-based, Keras' model.layers order) for `x`.
  Tensor predict_until(const Tensors& x, size_t index, int64_t batch_size = 32) const;

  std::string summary() const;  // Keras' table, returned as text
  boost::json::object get_config() const;
  std::string to_json() const;  // Keras' model.to_json() format
  // A Sequential or functional model from its Keras config (either "class_name"/"config" envelope
  // or the bare config), as Keras 2.x, tf.keras and Keras 3 write it.
  static Model from_config(const boost::json::value& model_config);

  const std::string& name() const { return name_; }
  bool is_sequential() const { return sequential_; }
  // Keras' model.layers: a functional model lists its InputLayers, a Sequential one does not.
  size_t size() const { return layers_.size(); }
  Layer& layer(size_t index);
  const Layer& layer(size_t index) const;
  Layer& get_layer(const std::string& name);
  const Layer& get_layer(const std::string& name) const;
  const std::vector<KerasTensor>& inputs() const { return inputs_; }
  const std::vector<KerasTensor>& outputs() const { return outputs_; }
  KerasTensor input() const;                      // the one input (an error for a model with several)
  KerasTensor output() const;                     // the one output
  std::vector<std::string> input_names() const;   // the input layers' names
  std::vector<std::string> output_names() const;  // the output layers' names (Keras' output_names)
  const Shape& input_shape() const;               // of the first input
  const Shape& output_shape() const;              // of the first output
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
  void save(const std::string& path, const SaveOptions& options) const;
  // Weights only, in Keras 2's save_weights HDF5 layout.
  void save_weights(const std::string& path) const;
  // Weights from a save_weights file or a full model file, matched layer by layer in order.
  void load_weights(const std::string& path);
  bool stop_training = false;  // set by callbacks

  // Runs the graph on host or backend tensors, one per input; returns the outputs (internal to the
  // training loop and to models used as layers).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, bool training, uint64_t seed) const;

 protected:
  explicit Model(std::string name, bool sequential);
  std::string name_;
  bool sequential_ = false;
  std::vector<KerasTensor> inputs_, outputs_;
  std::vector<std::shared_ptr<Layer>> layers_;       // Keras' model.layers
  std::vector<std::shared_ptr<graph::Node>> nodes_;  // the calls, in an order that runs them
  void rebuild();  // after the graph changed: what runs when, and what each step frees
  std::string unique_name(const std::string& class_name);

 private:
  struct Training;
  struct Plan;
  std::vector<Tensor> inputs_of(const Tensors& x, const std::string& what) const;
  std::vector<Tensor> targets_of(const Tensors& y, const std::string& what) const;
  KerasTensor output_of(const Layer& layer) const;  // its first call's output in this model
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs, bool training, uint64_t seed,
                              const std::vector<KerasTensor>& wanted) const;
  std::map<std::string, int> name_counts_;
  std::shared_ptr<Plan> plan_;
  std::shared_ptr<Training> training_;  // shared_ptr: Training is complete only in training.cpp
};

class Sequential : public Model {
 public:
  explicit Sequential(std::string name = "sequential");
  // A model that is a Sequential one (what load_model returns for a Sequential file); throws for a
  // functional model.
  Sequential(Model&& model);
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  // Adds a layer; the first needs an input shape (input_shape, input_dim, batch_input_shape or an
  // InputLayer before it).
  Sequential& add(const LayerSpec& layer);
  static Sequential from_config(const boost::json::value& model_config);
};

// Builds a model from Keras' to_json() text (tf.keras, Keras 2.2 and Keras 3 envelopes).
Model model_from_json(const std::string& json_text);

// Reads a Keras HDF5 model file (Keras 2.x, tf.keras 2.x, Keras 3 legacy .h5, or lamina's own).
// With `compile`, a file holding a training config comes back compiled, with its optimizer state
// restored where the file's naming is recognised.
Model load_model(const std::string& path, bool compile = true);
// The compile options a model file's training_config describes (loss, metrics, optimizer), or
// nothing when it has none; for evaluating a model whose optimizer lamina lacks.
std::optional<CompileOptions> load_training_config(const std::string& path);

}  // namespace lamina
