// The layer graph: layers made from specs, their calls on symbolic tensors (nodes), and the
// helpers the model builders share (graph.cpp).
#pragma once

#include <lamina/model.hpp>

#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lamina {

namespace graph {

// One call of a layer: its symbolic inputs and the shapes of its outputs. A model input is the one
// call of an InputLayer, without inputs.
struct Node {
  std::shared_ptr<Layer> layer;
  std::vector<KerasTensor> inputs;
  std::vector<Shape> output_shapes;
};

}  // namespace graph

// What the core reaches inside a Layer.
struct LayerAccess {
  // A layer of `spec`'s class, configured but not built; named from the config, else `fallback`.
  static std::shared_ptr<Layer> create(const LayerSpec& spec, const std::string& fallback_name);
  // An InputLayer for a model input.
  static std::shared_ptr<Layer> input(const std::string& name, const Shape& shape);
  // A model used as a layer of another.
  static std::shared_ptr<Layer> of_model(std::shared_ptr<Model> model);
  // Calls `layer` on symbolic inputs: builds it on its first call (declaring its weights), checks
  // the inputs of a later call against the weights it has.
  static std::vector<KerasTensor> call(const std::shared_ptr<Layer>& layer, const std::vector<KerasTensor>& inputs);
  // Builds `layer` for `input_shapes` outside any graph, its weights zeros (no initializer runs, so
  // the seeded generator is not drawn from); for a layer the core runs with weights of its own.
  static void build_detached(Layer& layer, const std::vector<Shape>& input_shapes);
  // Calls a one-input layer with `weights` in place of its own (as many, in the same order).
  static Tensor call_with(const Layer& layer, const std::vector<Tensor>& weights, const Tensor& input,
                          bool training, uint64_t seed);
  static const std::vector<std::weak_ptr<graph::Node>>& nodes(const Layer& layer) { return layer.nodes_; }
  static void add_node(Layer& layer, const std::shared_ptr<graph::Node>& node) { layer.nodes_.push_back(node); }
  static void rename(Layer& layer, const std::string& name) { layer.name_ = name; }
  // The layer's regularizers and constraints (read when it is built); null when it has none.
  static const LayerTerms* terms(const Layer& layer) { return layer.terms_.get(); }
};

// Keras' generic_utils.to_snake_case: Conv2D → conv2d, MaxPooling2D → max_pooling2d.
std::string snake_case(const std::string& class_name);
// A process-wide unique layer name for a class (Keras' backend.unique_object_name): dense, dense_1...
std::string global_unique_name(const std::string& class_name);
// A list of dimensions from a config; the first dropped when `drop_batch`.
Shape json_shape(const boost::json::value& v, const std::string& where, bool drop_batch);
// The input shape a layer config declares, if any (Keras 2 and 3 spellings).
std::optional<Shape> declared_input_shape(const boost::json::object& c, const std::string& where);
// The input shape a model's first layer of class `class_name` declares, if any. An Embedding's
// input_dim is its vocabulary, not its input's size; tf_keras gives its input's length as
// input_length.
std::optional<Shape> first_layer_input_shape(const std::string& class_name, const boost::json::object& c,
                                             const std::string& where);
// Refuses a dtype other than float32.
// `input`: an InputLayer's config, which may also declare integer inputs (carried as float32).
void check_dtype(const boost::json::object& c, const std::string& where, bool input = false);
// "(None, 28, 28, 1)"
std::string batch_shape_text(const Shape& shape);

}  // namespace lamina
