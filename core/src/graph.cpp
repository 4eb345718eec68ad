// Layers and their calls: creating a layer from its spec, building it on its first call, symbolic
// tensors (Input, LayerSpec::operator()), and running a layer on real tensors.
#include "graph.hpp"

#include "initializers.hpp"
#include "model.hpp"
#include "plugins.hpp"
#include "regularization.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/ops.hpp>
#include <lamina/sdk/json.hpp>

#include <algorithm>
#include <iterator>
#include <mutex>

namespace lamina {

std::string snake_case(const std::string& class_name) {
  std::string out;
  for (size_t i = 0; i < class_name.size(); ++i) {
    char c = class_name[i];
    if (std::isupper(static_cast<unsigned char>(c)) && i > 0 &&
        (std::islower(static_cast<unsigned char>(class_name[i - 1])) ||
         (i + 1 < class_name.size() && std::islower(static_cast<unsigned char>(class_name[i + 1])))))
      out += '_';
    out += char(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string global_unique_name(const std::string& class_name) {
  static std::mutex mutex;
  static std::map<std::string, int> counts;
  std::lock_guard lock(mutex);
  std::string base = snake_case(class_name);
  int& n = counts[base];
  std::string name = n == 0 ? base : base + "_" + std::to_string(n);
  ++n;
  return name;
}

Shape json_shape(const boost::json::value& v, const std::string& where, bool drop_batch) {
  if (!v.is_array()) throw Error(where + " must be a list of dimensions, got " + boost::json::serialize(v));
  Shape s;
  const auto& a = v.as_array();
  for (size_t i = drop_batch ? 1 : 0; i < a.size(); ++i) {
    if (a[i].is_int64() && a[i].as_int64() > 0) s.push_back(a[i].as_int64());
    else if (a[i].is_uint64()) s.push_back(int64_t(a[i].as_uint64()));
    else throw Error(where + ": dimension " + boost::json::serialize(a[i]) +
                     " is not a positive integer (only the batch dimension may be null)");
  }
  if (s.size() > LAMINA_MAX_DIMS - 1) throw Error(where + ": too many dimensions");
  return s;
}

std::optional<Shape> declared_input_shape(const boost::json::object& c, const std::string& where) {
  if (auto* v = c.if_contains("batch_input_shape"); v && !v->is_null())
    return json_shape(*v, where + ": batch_input_shape", true);
  if (auto* v = c.if_contains("batch_shape"); v && !v->is_null()) return json_shape(*v, where + ": batch_shape", true);
  if (auto* v = c.if_contains("input_shape"); v && !v->is_null()) return json_shape(*v, where + ": input_shape", false);
  if (auto* v = c.if_contains("shape"); v && !v->is_null()) return json_shape(*v, where + ": shape", false);
  if (auto* v = c.if_contains("input_dim"); v && !v->is_null()) {
    if (!v->is_int64() || v->as_int64() < 1) throw Error(where + ": input_dim must be a positive integer");
    return Shape{v->as_int64()};
  }
  return std::nullopt;
}

std::optional<Shape> first_layer_input_shape(const std::string& class_name, const boost::json::object& c,
                                             const std::string& where) {
  if (lower(class_name) != "embedding") return declared_input_shape(c, where);
  boost::json::object declaring = c;
  declaring.erase("input_dim");
  if (auto* n = declaring.if_contains("input_length"); n && !n->is_null()) {
    declaring["input_shape"] = boost::json::array{*n};
    declaring.erase("batch_input_shape");
    declaring.erase("batch_shape");
  }
  return declared_input_shape(declaring, where);
}

void check_dtype(const boost::json::object& c, const std::string& where, bool input) {
  auto* d = c.if_contains("dtype");
  if (!d || d->is_null()) return;
  std::string name;
  if (d->is_string()) name = std::string(d->as_string());
  else if (d->is_object() && d->as_object().contains("config")) {
    auto& cfg = d->as_object().at("config");
    if (cfg.is_object() && cfg.as_object().contains("name") && cfg.as_object().at("name").is_string())
      name = std::string(cfg.as_object().at("name").as_string());
  }
  if (name.empty() || name == "float32") return;
  // Integer inputs (Embedding's token ids) travel as float32, which holds every integer up to 2^24
  // exactly.
  static const char* const integers[] = {"int8",  "int16",  "int32",  "int64",
                                         "uint8", "uint16", "uint32", "uint64"};
  if (input && std::find(std::begin(integers), std::end(integers), name) != std::end(integers)) return;
  throw Error(where + ": dtype '" + name + "' is not supported; lamina computes in float32" +
              (input ? " (inputs may also be integers, which it carries as float32)" : ""));
}

std::string batch_shape_text(const Shape& shape) {
  std::string s = "(None";
  for (int64_t d : shape) s += ", " + std::to_string(d);
  return s + ")";
}

namespace {

std::string describe(const Layer& l) { return l.class_name() + " '" + l.name() + "'"; }

std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string s;
  for (const Shape& x : shapes) s += (s.empty() ? "" : ", ") + batch_shape_text(x);
  return shapes.size() == 1 ? s : "[" + s + "]";
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Layer

Layer::~Layer() {
  if (instance_ && plugin_) plugin_->table.destroy(instance_);
}

std::vector<Tensor> Layer::get_weights() const {
  std::vector<Tensor> out;
  for (const Tensor& w : weights_) out.push_back(Tensor::from_vector(w.to_vector(), w.shape()));
  return out;
}

void Layer::set_weights(const std::vector<Tensor>& weights) {
  if (weights.size() != weights_.size())
    throw Error("layer '" + name_ + "' (" + class_name_ + ") has " + std::to_string(weights_.size()) +
                " weights, set_weights got " + std::to_string(weights.size()));
  for (size_t i = 0; i < weights.size(); ++i)
    if (weights[i].shape() != weights_[i].shape())
      throw Error("layer '" + name_ + "': weight '" + weight_names_[i] + "' has shape " +
                  shape_to_string(weights_[i].shape()) + ", set_weights got " + shape_to_string(weights[i].shape()));
  NoGradGuard no_grad;
  for (size_t i = 0; i < weights.size(); ++i) assign(weights_[i], weights[i]);
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const Tensor& w : weights_) n += w.size();
  return n;
}

boost::json::object Layer::get_config() const {
  if (model_) return model_->get_config();
  boost::json::object c{{"name", name_}, {"trainable", trainable_}, {"dtype", "float32"}};
  if (is_input()) {
    boost::json::array batch_shape{nullptr};
    for (int64_t d : output_shapes_.at(0)) batch_shape.push_back(d);
    c = {{"batch_input_shape", batch_shape}, {"dtype", "float32"}, {"sparse", false}, {"ragged", false},
         {"name", name_}};
    return c;
  }
  boost::system::error_code ec;
  boost::json::value own = boost::json::parse(plugin_->table.get_config(instance_), ec);
  if (!ec && own.is_object())
    for (auto& [k, v] : own.as_object()) c[k] = v;
  return c;
}

KerasTensor Layer::input() const {
  for (const auto& weak : nodes_)
    if (auto node = weak.lock()) {
      if (is_input()) return KerasTensor{node, 0};
      if (node->inputs.size() != 1)
        throw Error("layer '" + name_ + "' has " + std::to_string(node->inputs.size()) +
                    " inputs; take them from the model's graph instead of input()");
      return node->inputs[0];
    }
  throw Error("layer '" + name_ + "' has not been called on a symbolic input yet, so it has no input()");
}

// A shared layer's output() is its first call's, like Keras' get_output_at(0).
KerasTensor Layer::output() const {
  std::shared_ptr<graph::Node> first;
  for (const auto& weak : nodes_)
    if ((first = weak.lock())) break;
  if (!first) throw Error("layer '" + name_ + "' has not been called on a symbolic input yet, so it has no output()");
  if (first->output_shapes.size() != 1)
    throw Error("layer '" + name_ + "' has " + std::to_string(first->output_shapes.size()) +
                " outputs; output() is for a layer with one");
  return KerasTensor{first, 0};
}

Tensor LayerAccess::call_with(const Layer& layer, const std::vector<Tensor>& weights, const Tensor& input,
                              bool training, uint64_t seed) {
  if (!layer.plugin_ || layer.model_ || LAMINA_LAYER_HAS(&layer.plugin_->table, call_many))
    throw Error("layer '" + layer.name_ + "' (" + layer.class_name_ + ") is not a one-input plugin layer");
  if (weights.size() != layer.weights_.size())
    throw Error("layer '" + layer.name_ + "' (" + layer.class_name_ + ") has " +
                std::to_string(layer.weights_.size()) + " weights, not " + std::to_string(weights.size()));
  std::vector<lamina_tensor> w;
  for (const Tensor& t : weights) w.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  lamina_call_context ctx{sizeof(lamina_call_context), training ? 1 : 0, seed};
  lamina_tensor out = nullptr;
  ErrorSlot error;
  if (layer.plugin_->table.call(layer.instance_, &ctx, w.data(), int32_t(w.size()),
                                reinterpret_cast<lamina_tensor>(input.impl()), &out, &error) != LAMINA_OK)
    throw Error("layer '" + layer.name_ + "' (" + layer.class_name_ + "): " + error.message);
  if (!out) throw Error("layer '" + layer.name_ + "' (" + layer.class_name_ + ") returned no output");
  return Tensor(reinterpret_cast<TensorImpl*>(out), false);
}

Tensor Layer::call(const Tensor& input, bool training, uint64_t seed) const {
  if (!model_ && !(plugin_ && LAMINA_LAYER_HAS(&plugin_->table, call_many))) {
    if (!plugin_) throw Error("layer '" + name_ + "' (" + class_name_ + ") is a model input; it is not called");
    return LayerAccess::call_with(*this, weights_, input, training, seed);
  }
  std::vector<Tensor> out = call(std::vector<Tensor>{input}, training, seed);
  if (out.size() != 1)
    throw Error("layer '" + name_ + "' (" + class_name_ + ") has " + std::to_string(out.size()) + " outputs");
  return out[0];
}

std::vector<Tensor> Layer::call(const std::vector<Tensor>& inputs, bool training, uint64_t seed) const {
  if (model_) return model_->run(inputs, training, seed);
  if (!plugin_) throw Error("layer '" + name_ + "' (" + class_name_ + ") is a model input; it is not called");
  if (!LAMINA_LAYER_HAS(&plugin_->table, call_many)) {
    if (inputs.size() != 1)
      throw Error("layer '" + name_ + "' (" + class_name_ + ") takes one input, not " + std::to_string(inputs.size()));
    return {call(inputs[0], training, seed)};
  }
  std::vector<lamina_tensor> w, in;
  for (const Tensor& t : weights_) w.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  for (const Tensor& t : inputs) in.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  const int32_t n_out = int32_t(output_shapes_.size());
  lamina_tensor out[LAMINA_MAX_OUTPUTS] = {};
  lamina_call_context ctx{sizeof(lamina_call_context), training ? 1 : 0, seed};
  ErrorSlot error;
  lamina_status status = plugin_->table.call_many(instance_, &ctx, w.data(), int32_t(w.size()), in.data(),
                                                  int32_t(in.size()), out, n_out, &error);
  std::vector<Tensor> result;
  for (int32_t i = 0; i < n_out; ++i)
    if (out[i]) result.emplace_back(reinterpret_cast<TensorImpl*>(out[i]), false);
  if (status != LAMINA_OK) throw Error("layer '" + name_ + "' (" + class_name_ + "): " + error.message);
  if (int32_t(result.size()) != n_out)
    throw Error("layer '" + name_ + "' (" + class_name_ + ") returned " + std::to_string(result.size()) +
                " outputs, not " + std::to_string(n_out));
  return result;
}

// ------------------------------------------------------------------------------------------------
// Creating and building layers

std::shared_ptr<Layer> LayerAccess::create(const LayerSpec& spec, const std::string& fallback_name) {
  auto* given = spec.config.if_contains("name");
  std::string where = spec.class_name + (given && given->is_string() ? " '" + std::string(given->as_string()) + "'"
                                                                     : std::string(" layer"));
  check_dtype(spec.config, where);
  const LayerPlugin& plugin = Registry::get().layer(spec.class_name);
  auto layer = std::shared_ptr<Layer>(new Layer);
  layer->class_name_ = plugin.table.class_name;
  layer->name_ = given && given->is_string() ? std::string(given->as_string()) : fallback_name;
  if (layer->name_.empty()) layer->name_ = global_unique_name(layer->class_name_);
  if (auto* t = spec.config.if_contains("trainable"); t && t->is_bool()) layer->trainable_ = t->as_bool();
  where = describe(*layer);
  ErrorSlot error;
  std::string config_text = sdk::json_text(spec.config);
  layer->instance_ = plugin.table.create(config_text.c_str(), &error);
  if (!layer->instance_)
    throw Error(std::string(error.message[0] ? error.message : "invalid config") + " (in " + where + ")");
  layer->plugin_ = &plugin;
  return layer;
}

std::shared_ptr<Layer> LayerAccess::input(const std::string& name, const Shape& shape) {
  auto layer = std::shared_ptr<Layer>(new Layer);
  layer->class_name_ = "InputLayer";
  layer->name_ = name.empty() ? global_unique_name("input_layer") : name;
  layer->input_shapes_ = {shape};
  layer->output_shapes_ = {shape};
  return layer;
}

std::shared_ptr<Layer> LayerAccess::of_model(std::shared_ptr<Model> model) {
  auto layer = std::shared_ptr<Layer>(new Layer);
  layer->class_name_ = model->is_sequential() ? "Sequential" : "Functional";
  layer->name_ = model->name();
  for (size_t i = 0; i < model->size(); ++i) {
    const Layer& inner = model->layer(i);
    for (size_t k = 0; k < inner.weights_.size(); ++k) {
      layer->weights_.push_back(inner.weights_[k]);
      layer->weight_names_.push_back(inner.name() + "/" + inner.weight_names_[k]);
      layer->weight_trainable_.push_back(inner.weight_trainable_[k]);
    }
  }
  for (const KerasTensor& t : model->inputs()) layer->input_shapes_.push_back(t.shape());
  for (const KerasTensor& t : model->outputs()) layer->output_shapes_.push_back(t.shape());
  layer->model_ = std::move(model);
  return layer;
}

namespace {

// Runs the plugin's build for these input shapes. `adding` receives each weight the layer declares.
std::vector<Shape> run_build(const Layer& layer, const LayerPlugin& plugin, void* instance,
                             const std::vector<Shape>& input_shapes, lamina_layer_builder_impl& builder) {
  const std::string where = describe(layer);
  ErrorSlot error;
  NoGradGuard no_grad;
  if (LAMINA_LAYER_HAS(&plugin.table, build_many)) {
    std::vector<int64_t> shapes(input_shapes.size() * LAMINA_MAX_DIMS, 0);
    std::vector<int32_t> ndims;
    for (size_t i = 0; i < input_shapes.size(); ++i) {
      std::copy(input_shapes[i].begin(), input_shapes[i].end(), shapes.begin() + long(i * LAMINA_MAX_DIMS));
      ndims.push_back(int32_t(input_shapes[i].size()));
    }
    int64_t out[LAMINA_MAX_OUTPUTS * LAMINA_MAX_DIMS] = {};
    int32_t out_ndims[LAMINA_MAX_OUTPUTS] = {}, n_out = 0;
    if (plugin.table.build_many(instance, &builder, int32_t(input_shapes.size()), shapes.data(), ndims.data(), out,
                                out_ndims, &n_out, &error) != LAMINA_OK)
      throw Error(std::string(error.message) + " (in " + where + ", input shape " + shapes_text(input_shapes) + ")");
    if (n_out < 1 || n_out > LAMINA_MAX_OUTPUTS) throw Error(where + ": its build gave no outputs");
    std::vector<Shape> result;
    for (int32_t i = 0; i < n_out; ++i) {
      if (out_ndims[i] < 0 || out_ndims[i] > LAMINA_MAX_DIMS) throw Error(where + ": its build gave a bad rank");
      result.emplace_back(out + i * LAMINA_MAX_DIMS, out + i * LAMINA_MAX_DIMS + out_ndims[i]);
    }
    return result;
  }
  if (input_shapes.size() != 1)
    throw Error(where + " takes one input, but it was called on " + std::to_string(input_shapes.size()) + " (" +
                shapes_text(input_shapes) + ")");
  int64_t out[LAMINA_MAX_DIMS];
  int32_t out_ndim = 0;
  if (plugin.table.build(instance, &builder, input_shapes[0].data(), int32_t(input_shapes[0].size()), out, &out_ndim,
                         &error) != LAMINA_OK)
    throw Error(std::string(error.message) + " (in " + where + ", input shape " + shape_to_string(input_shapes[0]) +
                ")");
  if (out_ndim < 0 || out_ndim > LAMINA_MAX_DIMS) throw Error(where + ": its build gave a bad rank");
  return {Shape(out, out + out_ndim)};
}

}  // namespace

void LayerAccess::build_detached(Layer& layer, const std::vector<Shape>& input_shapes) {
  if (!layer.plugin_ || !layer.input_shapes_.empty())
    throw Error(describe(layer) + " cannot be built detached: it is not a plugin layer, or is built already");
  lamina_layer_builder_impl builder;
  Layer* l = &layer;
  builder.add = [l](const std::string& wname, const Shape& shape, const std::string&, bool) {
    l->weights_.push_back(Tensor::zeros(shape));
    l->weight_names_.push_back(wname);
    l->weight_trainable_.push_back(false);
  };
  layer.output_shapes_ = run_build(layer, *layer.plugin_, layer.instance_, input_shapes, builder);
  layer.input_shapes_ = input_shapes;
}

std::vector<KerasTensor> LayerAccess::call(const std::shared_ptr<Layer>& layer_ptr,
                                           const std::vector<KerasTensor>& inputs) {
  Layer& layer = *layer_ptr;
  const std::string where = describe(layer);
  if (inputs.empty()) throw Error(where + " was called on no inputs");
  std::vector<Shape> shapes;
  for (const KerasTensor& t : inputs) {
    if (!t.defined()) throw Error(where + " was called on an empty KerasTensor (not made by Input() or a layer)");
    shapes.push_back(t.shape());
  }
  if (layer.is_input()) throw Error(where + " is a model input; it cannot be called on tensors");
  std::vector<Shape> outputs;
  const bool first_call = layer.input_shapes_.empty();
  if (layer.model_) {
    if (shapes != layer.input_shapes_)
      throw Error("model '" + layer.name() + "' takes " + shapes_text(layer.input_shapes_) + ", but it was called on " +
                  shapes_text(shapes));
    outputs = layer.output_shapes_;
  } else if (first_call) {
    lamina_layer_builder_impl builder;
    Layer* l = &layer;
    builder.add = [l, &where](const std::string& wname, const Shape& shape, const std::string& init, bool trainable) {
      int64_t elements = 1;
      for (int64_t d : shape) {
        if (d < 0 || (d > 0 && elements > weight_limit().elements / d)) {
          elements = -1;
          break;
        }
        elements *= d;
      }
      if (elements < 0 || elements > weight_limit().elements)
        throw Error(where + ": weight '" + wname + "' of shape " + shape_to_string(shape) + " is larger than " +
                    weight_limit().source + " (" + std::to_string(weight_limit().elements) +
                    " values); check the layer's sizes");
      boost::system::error_code ec;
      boost::json::value init_json = boost::json::parse(init, ec);
      if (ec) init_json = boost::json::string(init);  // a bare name such as glorot_uniform
      Tensor w = initialize(init_json, shape, where + " weight '" + wname + "'");
      bool train = trainable && l->trainable_;
      w.set_requires_grad(train);
      l->weights_.push_back(w);
      l->weight_names_.push_back(wname);
      l->weight_trainable_.push_back(train);
    };
    outputs = run_build(layer, *layer.plugin_, layer.instance_, shapes, builder);
    std::vector<Shape> weight_shapes;
    for (const Tensor& w : layer.weights_) weight_shapes.push_back(w.shape());
    LayerTerms terms = read_layer_terms(where, layer.get_config(), layer.weight_names_, weight_shapes);
    if (!terms.empty()) layer.terms_ = std::make_shared<const LayerTerms>(std::move(terms));
    layer.input_shapes_ = shapes;
    layer.output_shapes_ = outputs;
  } else {
    // A shared layer called again: the same weights must fit these inputs.
    size_t next = 0;
    lamina_layer_builder_impl builder;
    Layer* l = &layer;
    builder.add = [l, &next, &where, &shapes](const std::string& wname, const Shape& shape, const std::string&, bool) {
      if (next >= l->weights_.size() || l->weight_names_[next] != wname || l->weights_[next].shape() != shape)
        throw Error(where + " is shared, and its weights do not fit the input " + shapes_text(shapes) +
                    " (weight '" + wname + "' would be " + shape_to_string(shape) + "; the layer was built for " +
                    shapes_text(l->input_shapes_) + ")");
      ++next;
    };
    outputs = run_build(layer, *layer.plugin_, layer.instance_, shapes, builder);
    if (next != layer.weights_.size())
      throw Error(where + " is shared, and it declared other weights for the input " + shapes_text(shapes));
  }
  auto node = std::make_shared<graph::Node>();
  node->layer = layer_ptr;
  node->inputs = inputs;
  node->output_shapes = outputs;
  add_node(layer, node);
  std::vector<KerasTensor> result;
  for (size_t i = 0; i < outputs.size(); ++i) result.push_back(KerasTensor{node, int(i)});
  return result;
}

// ------------------------------------------------------------------------------------------------
// Symbolic tensors

const Shape& KerasTensor::shape() const {
  if (!node) throw Error("an empty KerasTensor has no shape");
  return node->output_shapes.at(size_t(index));
}

const Layer& KerasTensor::layer() const {
  if (!node) throw Error("an empty KerasTensor has no layer");
  return *node->layer;
}

KerasTensor Input(const Shape& shape, const std::string& name) {
  for (int64_t d : shape)
    if (d < 1) throw Error("Input: dimension " + std::to_string(d) + " of " + shape_to_string(shape) +
                           " is not a positive size (the batch dimension is not part of the shape)");
  if (shape.size() > LAMINA_MAX_DIMS - 1) throw Error("Input: too many dimensions in " + shape_to_string(shape));
  auto layer = LayerAccess::input(name, shape);
  auto node = std::make_shared<graph::Node>();
  node->layer = layer;
  node->output_shapes = {shape};
  LayerAccess::add_node(*layer, node);
  return KerasTensor{node, 0};
}

std::vector<KerasTensor> LayerSpec::call(const std::vector<KerasTensor>& inputs) const {
  if (!*instance_) {
    if (lower(class_name) == "inputlayer") throw Error("an InputLayer is not called; use Input(shape) instead");
    *instance_ = LayerAccess::create(*this, "");
  }
  return LayerAccess::call(*instance_, inputs);
}

KerasTensor LayerSpec::operator()(const std::vector<KerasTensor>& inputs) const {
  std::vector<KerasTensor> out = call(inputs);
  if (out.size() != 1)
    throw Error("layer '" + (*instance_)->name() + "' has " + std::to_string(out.size()) +
                " outputs; use LayerSpec::call to get them all");
  return out[0];
}

KerasTensor LayerSpec::operator()(const KerasTensor& input) const { return (*this)(std::vector<KerasTensor>{input}); }

}  // namespace lamina
