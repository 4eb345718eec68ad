// Models as graphs of layer calls: the functional constructor, Sequential's chain, running the
// graph, layers by index and name, and the summary.
#include "model.hpp"

#include "folding.hpp"
#include "graph.hpp"
#include "regularization.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/model.hpp>
#include <lamina/ops.hpp>
#include <lamina/sdk/json.hpp>

#include <cstdio>
#include <set>
#include <sstream>

namespace lamina {

WeightLimit& weight_limit() {
  thread_local WeightLimit limit;
  return limit;
}

// What runs when: every call of the graph in an order that has each input computed first, its
// outputs as slots of one value array.
struct Model::Plan {
  struct Step {
    const graph::Node* node;
    std::vector<int> in;  // value slots
    int out = 0;          // the first output's slot
  };
  std::map<const graph::Node*, int> first_slot;
  std::vector<int> input_slots;
  std::vector<Step> steps;
  // Conv2D/Dense calls a BatchNormalization could be folded into for inference (folding.hpp).
  std::vector<std::unique_ptr<BatchNormFold>> folds;
  int n_values = 0;
  int slot(const KerasTensor& t) const {
    auto it = first_slot.find(t.node.get());
    if (it == first_slot.end()) throw Error("the tensor is not part of this model's graph");
    return it->second + t.index;
  }
};

Model::Model(std::string name, bool sequential) : name_(std::move(name)), sequential_(sequential) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model::Model(const KerasTensor& inputs, const KerasTensor& outputs, std::string name)
    : Model(std::vector<KerasTensor>{inputs}, std::vector<KerasTensor>{outputs}, std::move(name)) {}

Model::Model(std::vector<KerasTensor> inputs, std::vector<KerasTensor> outputs, std::string name)
    : name_(name.empty() ? global_unique_name("Functional") : std::move(name)) {
  if (inputs.empty()) throw Error("Model '" + name_ + "': it needs at least one input (from Input())");
  if (outputs.empty()) throw Error("Model '" + name_ + "': it needs at least one output");
  std::set<const graph::Node*> input_nodes;
  for (const KerasTensor& t : inputs) {
    if (!t.defined()) throw Error("Model '" + name_ + "': an input is an empty KerasTensor");
    if (!t.node->layer->is_input())
      throw Error("Model '" + name_ + "': input '" + t.layer().name() +
                  "' is the output of a layer, not an Input(); a model's inputs come from Input()");
    if (!input_nodes.insert(t.node.get()).second)
      throw Error("Model '" + name_ + "': input '" + t.layer().name() + "' is given twice");
  }
  for (const KerasTensor& t : outputs)
    if (!t.defined()) throw Error("Model '" + name_ + "': an output is an empty KerasTensor");
  inputs_ = std::move(inputs);
  outputs_ = std::move(outputs);
  // Depth-first from the outputs: every node after the nodes it reads.
  std::set<const graph::Node*> done, active;
  std::function<void(const std::shared_ptr<graph::Node>&)> visit = [&](const std::shared_ptr<graph::Node>& node) {
    if (done.count(node.get())) return;
    if (node->layer->is_input()) {
      if (!input_nodes.count(node.get()))
        throw Error("Model '" + name_ + "': the outputs depend on input '" + node->layer->name() +
                    "', which is not one of the model's inputs; add it to the inputs");
      done.insert(node.get());
      return;
    }
    if (!active.insert(node.get()).second)
      throw Error("Model '" + name_ + "': layer '" + node->layer->name() + "' depends on its own output (a cycle)");
    for (const KerasTensor& in : node->inputs) visit(in.node);
    active.erase(node.get());
    done.insert(node.get());
    nodes_.push_back(node);
  };
  for (const KerasTensor& t : outputs_) visit(t.node);
  // Keras' model.layers: the inputs, then every other layer in the order it first runs.
  std::set<const Layer*> seen;
  std::map<std::string, const Layer*> names;
  auto add_layer = [&](const std::shared_ptr<Layer>& layer) {
    if (!seen.insert(layer.get()).second) return;
    auto [it, fresh] = names.emplace(layer->name(), layer.get());
    if (!fresh)
      throw Error("Model '" + name_ + "': two different layers are named '" + layer->name() +
                  "'; layer names must be unique within a model");
    layers_.push_back(layer);
  };
  for (const KerasTensor& t : inputs_) add_layer(t.node->layer);
  for (const auto& node : nodes_) add_layer(node->layer);
  rebuild();
}

Model::~Model() = default;

void Model::rebuild() {
  auto plan = std::make_shared<Plan>();
  for (const KerasTensor& t : inputs_) {
    plan->first_slot[t.node.get()] = plan->n_values;
    plan->input_slots.push_back(plan->n_values++);
  }
  for (const auto& node : nodes_) {
    Plan::Step step{node.get(), {}, plan->n_values};
    for (const KerasTensor& in : node->inputs) step.in.push_back(plan->slot(in));
    plan->first_slot[node.get()] = plan->n_values;
    plan->n_values += int(node->output_shapes.size());
    plan->steps.push_back(std::move(step));
  }
  std::map<const graph::Node*, size_t> step_of;
  for (size_t k = 0; k < nodes_.size(); ++k) step_of[nodes_[k].get()] = k;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const auto& bn = nodes_[k];
    if (bn->inputs.size() != 1 || !step_of.count(bn->inputs[0].node.get())) continue;
    const size_t conv_step = step_of[bn->inputs[0].node.get()];
    if (auto fold = plan_batch_norm_fold(nodes_[conv_step], bn)) {
      fold->conv_step = conv_step;
      fold->bn_step = k;
      plan->folds.push_back(std::move(fold));
    }
  }
  plan_ = std::move(plan);
}

std::vector<Tensor> Model::forward(const std::vector<Tensor>& inputs, bool training, uint64_t seed,
                                   const std::vector<KerasTensor>& wanted) const {
  const Plan& plan = *plan_;
  if (inputs.size() != plan.input_slots.size())
    throw Error("model '" + name_ + "' takes " + std::to_string(plan.input_slots.size()) + " inputs, not " +
                std::to_string(inputs.size()));
  std::vector<int> wanted_slots;
  for (const KerasTensor& t : wanted) wanted_slots.push_back(plan.slot(t));
  // Which steps the wanted values need, and how many needed steps read each value.
  std::vector<char> needed(size_t(plan.n_values), 0);
  std::vector<int> readers(size_t(plan.n_values), 0);
  for (int s : wanted_slots) needed[size_t(s)] = 1;
  std::vector<char> runs(plan.steps.size(), 0);
  for (size_t k = plan.steps.size(); k-- > 0;) {
    const Plan::Step& step = plan.steps[k];
    for (size_t o = 0; o < step.node->output_shapes.size() && !runs[k]; ++o) runs[k] = needed[size_t(step.out) + o];
    if (!runs[k]) continue;
    for (int in : step.in) needed[size_t(in)] = 1, ++readers[size_t(in)];
  }
  for (int s : wanted_slots) ++readers[size_t(s)];  // kept to the end
  // Inference: a BatchNormalization that alone reads a convolution's output, and is called nowhere
  // else, runs folded into it (folding.hpp).
  std::vector<const BatchNormFold*> folded(plan.steps.size(), nullptr);
  std::vector<char> skipped(plan.steps.size(), 0);
  if (!training && !plan.folds.empty() && batch_norm_folding_enabled())
    for (const auto& fold : plan.folds)
      if (runs[fold->bn_step] && readers[size_t(plan.steps[fold->conv_step].out)] == 1 &&
          called_once(*fold->bn->layer)) {
        folded[fold->conv_step] = fold.get();
        skipped[fold->bn_step] = 1;
      }
  std::vector<Tensor> values(size_t(plan.n_values));
  for (size_t i = 0; i < inputs.size(); ++i) values[size_t(plan.input_slots[i])] = inputs[i];
  std::vector<Tensor> step_inputs;
  for (size_t k = 0; k < plan.steps.size(); ++k) {
    if (!runs[k] || skipped[k]) continue;
    const Plan::Step& step = plan.steps[k];
    step_inputs.clear();
    for (int in : step.in) step_inputs.push_back(values[size_t(in)]);
    for (int in : step.in)
      if (--readers[size_t(in)] == 0) values[size_t(in)] = Tensor();  // its last reader has it
    const uint64_t layer_seed = seed ^ (0x9E3779B97F4A7C15ull * (k + 1));
    const Layer& layer = *step.node->layer;
    if (const BatchNormFold* fold = folded[k]) {
      values[size_t(plan.steps[fold->bn_step].out)] = run_batch_norm_fold(*fold, step_inputs[0], layer_seed);
    } else if (step_inputs.size() == 1 && step.node->output_shapes.size() == 1) {
      values[size_t(step.out)] = layer.call(step_inputs[0], training, layer_seed);
    } else {
      std::vector<Tensor> out = layer.call(step_inputs, training, layer_seed);
      for (size_t o = 0; o < out.size(); ++o) values[size_t(step.out) + o] = std::move(out[o]);
    }
    if (ActivityPenalties* activity = ActivityPenalties::current())
      if (const LayerTerms* terms = LayerAccess::terms(layer); terms && terms->activity.active())
        for (size_t o = 0; o < step.node->output_shapes.size(); ++o)
          activity->add(terms->activity, values[size_t(step.out) + o]);
  }
  std::vector<Tensor> result;
  for (int s : wanted_slots) result.push_back(values[size_t(s)]);
  return result;
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs, bool training, uint64_t seed) const {
  return forward(inputs, training, seed, outputs_);
}

KerasTensor Model::output_of(const Layer& layer) const {
  for (const auto& weak : LayerAccess::nodes(layer))
    if (auto node = weak.lock(); node && plan_->first_slot.count(node.get())) {
      if (node->output_shapes.size() != 1)
        throw Error("layer '" + layer.name() + "' has " + std::to_string(node->output_shapes.size()) + " outputs");
      return KerasTensor{node, 0};
    }
  throw Error("layer '" + layer.name() + "' is not called in model '" + name_ + "'");
}

KerasTensor Model::operator()(const KerasTensor& input) const {
  std::vector<KerasTensor> out = (*this)(std::vector<KerasTensor>{input});
  if (out.size() != 1)
    throw Error("model '" + name_ + "' has " + std::to_string(out.size()) + " outputs; call it with a list");
  return out[0];
}

std::vector<KerasTensor> Model::operator()(const std::vector<KerasTensor>& inputs) const {
  // A model of its own over the same graph: the layers, and so the weights, are shared.
  auto inner = std::shared_ptr<Model>(new Model(inputs_, outputs_, name_));
  inner->sequential_ = sequential_;
  return LayerAccess::call(LayerAccess::of_model(std::move(inner)), inputs);
}

// ------------------------------------------------------------------------------------------------
// Sequential

Sequential::Sequential(std::string name) : Model(std::move(name), true) {}

Sequential::Sequential(Model&& model) : Model(std::move(model)) {
  if (!sequential_)
    throw Error("model '" + name_ + "' is a functional model, not a Sequential one; hold it as a lamina::Model");
}

std::string Model::unique_name(const std::string& class_name) {
  std::string base = snake_case(class_name);
  int& n = name_counts_[base];
  std::string name = n == 0 ? base : base + "_" + std::to_string(n);
  ++n;
  return name;
}

Sequential& Sequential::add(const LayerSpec& spec) {
  std::string where = spec.class_name + (spec.config.contains("name") && spec.config.at("name").is_string()
                                             ? " '" + std::string(spec.config.at("name").as_string()) + "'"
                                             : std::string(" layer #") + std::to_string(layers_.size() + 1));
  if (lower(spec.class_name) == "inputlayer") {
    // Like Keras, the InputLayer only sets the model's input; it is not one of model.layers.
    if (!layers_.empty()) throw Error(where + ": an InputLayer must come first");
    auto shape = declared_input_shape(spec.config, where);
    if (!shape) throw Error(where + ": needs batch_input_shape, batch_shape or shape");
    for (const char* flag : {"sparse", "ragged"})
      if (auto* v = spec.config.if_contains(flag); v && v->is_bool() && v->as_bool())
        throw Error(where + ": " + flag + " inputs are not supported; set \"" + flag + "\": false");
    check_dtype(spec.config, where, true);
    std::string name;
    if (auto* n = spec.config.if_contains("name"); n && n->is_string()) name = std::string(n->as_string());
    inputs_ = {Input(*shape, name.empty() ? " " : name)};  // " ": named after the first layer
    return *this;
  }
  auto* given = spec.config.if_contains("name");
  std::string name = given && given->is_string() ? std::string(given->as_string()) : unique_name(spec.class_name);
  for (auto& l : layers_)
    if (l->name() == name)
      throw Error(where + ": the model already has a layer named '" + name + "'; layer names must be unique");
  std::shared_ptr<Layer> layer = LayerAccess::create(spec, name);
  where = layer->class_name() + " '" + layer->name() + "'";
  if (layers_.empty()) {
    if (inputs_.empty()) {
      auto declared = first_layer_input_shape(spec.class_name, spec.config, where);
      if (declared) inputs_ = {Input(*declared, layer->name() + "_input")};
    }
    if (inputs_.empty())
      throw Error(where + ": the first layer needs an input shape — give input_shape (e.g. {28, 28, 1}), input_dim, "
                          "or add an InputLayer first");
    Layer& input = const_cast<Layer&>(inputs_[0].layer());
    if (input.name() == " ") LayerAccess::rename(input, layer->name() + "_input");
  }
  std::vector<KerasTensor> out = LayerAccess::call(layer, {outputs_.empty() ? inputs_[0] : outputs_[0]});
  if (out.size() != 1)
    throw Error(where + " has " + std::to_string(out.size()) + " outputs; a Sequential model needs one per layer");
  outputs_ = out;
  nodes_.push_back(out[0].node);
  layers_.push_back(layer);
  rebuild();
  return *this;
}

// ------------------------------------------------------------------------------------------------
// Layers and shapes

Layer& Model::layer(size_t index) {
  if (index >= layers_.size())
    throw Error("layer index " + std::to_string(index) + " is out of range; the model has " +
                std::to_string(layers_.size()) + " layers");
  return *layers_[index];
}
const Layer& Model::layer(size_t index) const { return const_cast<Model*>(this)->layer(index); }

Layer& Model::get_layer(const std::string& name) {
  std::string names;
  for (auto& l : layers_) {
    if (l->name() == name) return *l;
    names += (names.empty() ? "" : ", ") + l->name();
  }
  throw Error("no layer named '" + name + "'; the model's layers are: " + names);
}
const Layer& Model::get_layer(const std::string& name) const { return const_cast<Model*>(this)->get_layer(name); }

KerasTensor Model::input() const {
  if (inputs_.size() != 1)
    throw Error("model '" + name_ + "' has " + std::to_string(inputs_.size()) + " inputs; use inputs()");
  return inputs_[0];
}
KerasTensor Model::output() const {
  if (outputs_.size() != 1)
    throw Error("model '" + name_ + "' has " + std::to_string(outputs_.size()) + " outputs; use outputs()");
  return outputs_[0];
}

std::vector<std::string> Model::input_names() const {
  std::vector<std::string> out;
  for (const KerasTensor& t : inputs_) out.push_back(t.layer().name());
  return out;
}
std::vector<std::string> Model::output_names() const {
  std::vector<std::string> out;
  for (const KerasTensor& t : outputs_) out.push_back(t.layer().name());
  return out;
}

const Shape& Model::input_shape() const {
  if (inputs_.empty()) throw Error("the model has no input yet");
  return inputs_[0].shape();
}

const Shape& Model::output_shape() const {
  if (outputs_.empty()) throw Error("the model has no layers yet");
  return outputs_[0].shape();
}

int64_t Model::count_params() const {
  int64_t n = 0;
  for (auto& l : layers_) n += l->count_params();
  return n;
}

// ------------------------------------------------------------------------------------------------
// summary

namespace {

// Bytes as tf.keras 2.13+ prints a weight memory size: "397.54 KB", "0.00 Byte".
std::string readable_memory_size(double bytes) {
  const char* units[] = {"Byte", "KB", "MB", "GB", "TB", "PB"};
  char buf[48];
  for (const char* unit : units) {
    if (bytes / 1024 < 1) {
      std::snprintf(buf, sizeof buf, "%.2f %s", bytes, unit);
      return buf;
    }
    bytes /= 1024;
  }
  std::snprintf(buf, sizeof buf, "%.2f PB", bytes);
  return buf;
}

}  // namespace

// The index of `node` among `layer`'s calls that belong to this model (Keras' node index in a
// model config and in the summary's "Connected to").
static int node_index_in(const std::set<const graph::Node*>& model_nodes, const Layer& layer, const graph::Node* node) {
  int index = 0;
  for (const auto& weak : LayerAccess::nodes(layer)) {
    auto n = weak.lock();
    if (!n || !model_nodes.count(n.get())) continue;
    if (n.get() == node) return index;
    ++index;
  }
  return 0;
}

// tf.keras 2.13-2.15's model.summary(), character for character: for a Sequential model 65
// columns (layer, output shape, parameters), for a graph 98 with "Connected to"; fields cut at the
// column and continued on the next line, a blank line between layers, and the totals with their
// float32 memory size.
std::string Model::summary() const {
  std::ostringstream out;
  const size_t line_length = sequential_ ? 65 : 98;
  const std::vector<size_t> positions =
      sequential_ ? std::vector<size_t>{29, 55, 65} : std::vector<size_t>{29, 58, 68, 98};
  auto print_row = [&](std::vector<std::string> fields) {
    auto any_left = [&] {
      for (auto& f : fields)
        if (!f.empty()) return true;
      return false;
    };
    while (any_left()) {
      std::string line;
      for (size_t col = 0; col < fields.size(); ++col) {
        size_t start = col ? positions[col - 1] : 0;
        bool last = col + 1 == fields.size();
        size_t cutoff = positions[col] - start - (last ? 0 : 3);
        std::string fit = fields[col].substr(0, cutoff);
        size_t best = std::string::npos;  // Keras breaks after "),", "},", "],", "',"
        for (const char* mark : {"),", "},", "],", "',"})
          if (size_t at = fit.find(mark); at != std::string::npos) best = std::min(best, at + 2);
        if (best != std::string::npos) cutoff = best, fit = fit.substr(0, cutoff);
        if (col == 0) line += " ";
        line += fit + (last ? "" : "  ");
        fields[col] = fields[col].size() > cutoff ? fields[col].substr(cutoff) : "";
        if (line.size() < positions[col]) line += std::string(positions[col] - line.size(), ' ');
      }
      out << line << "\n";
    }
  };
  out << "Model: \"" << name_ << "\"\n" << std::string(line_length, '_') << "\n";
  if (sequential_) print_row({"Layer (type)", "Output Shape", "Param #"});
  else print_row({"Layer (type)", "Output Shape", "Param #", "Connected to"});
  out << std::string(line_length, '=') << "\n";
  std::set<const graph::Node*> model_nodes;
  for (const KerasTensor& t : inputs_) model_nodes.insert(t.node.get());
  for (const auto& n : nodes_) model_nodes.insert(n.get());
  int64_t total = 0, trainable = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = *layers_[i];
    // tf.keras prints an InputLayer's shape, and a layer's with several outputs, as a list.
    std::string shape;
    for (const Shape& out : l.output_shapes()) shape += (shape.empty() ? "" : ", ") + batch_shape_text(out);
    if (l.is_input() || l.output_shapes().size() > 1) shape = "[" + shape + "]";
    if (sequential_) {
      print_row({l.name() + " (" + l.class_name() + ")", shape, std::to_string(l.count_params())});
      if (i + 1 < layers_.size()) out << std::string(line_length, ' ') << "\n";
    } else {
      std::string connections;
      for (const auto& weak : LayerAccess::nodes(l)) {
        auto node = weak.lock();
        if (!node || !model_nodes.count(node.get())) continue;
        for (const KerasTensor& in : node->inputs)
          connections += std::string(connections.empty() ? "" : ", ") + "'" + in.layer().name() + "[" +
                         std::to_string(node_index_in(model_nodes, in.layer(), in.node.get())) + "][" +
                         std::to_string(in.index) + "]'";
      }
      print_row({l.name() + " (" + l.class_name() + ")", shape, std::to_string(l.count_params()),
                 "[" + connections + "]"});
      if (i + 1 < layers_.size()) out << std::string(line_length, ' ') << "\n";
    }
    total += l.count_params();
    for (size_t k = 0; k < l.weights().size(); ++k)
      if (l.weight_trainable(k)) trainable += l.weights()[k].size();
  }
  out << std::string(line_length, '=') << "\n";
  out << "Total params: " << total << " (" << readable_memory_size(4.0 * double(total)) << ")\n";
  out << "Trainable params: " << trainable << " (" << readable_memory_size(4.0 * double(trainable)) << ")\n";
  out << "Non-trainable params: " << total - trainable << " ("
      << readable_memory_size(4.0 * double(total - trainable)) << ")\n";
  out << std::string(line_length, '_') << "\n";
  return out.str();
}

// ------------------------------------------------------------------------------------------------
// Keras configs

boost::json::object Model::get_config() const {
  if (sequential_) {
    boost::json::array layers;
    if (!inputs_.empty()) {
      const Layer& input = inputs_[0].layer();
      boost::json::object c = input.get_config();
      layers.push_back(boost::json::object{{"class_name", "InputLayer"}, {"config", c}});
    }
    for (auto& l : layers_)
      layers.push_back(boost::json::object{{"class_name", l->class_name()}, {"config", l->get_config()}});
    return {{"name", name_}, {"layers", layers}};
  }
  // tf.keras 2's functional config, which every Keras reads: layers with their inbound nodes as
  // [layer, node index, tensor index, kwargs] lists.
  std::set<const graph::Node*> model_nodes;
  for (const KerasTensor& t : inputs_) model_nodes.insert(t.node.get());
  for (const auto& n : nodes_) model_nodes.insert(n.get());
  auto ref = [&](const KerasTensor& t) {
    return boost::json::array{boost::json::string(t.layer().name()),
                              node_index_in(model_nodes, t.layer(), t.node.get()), t.index};
  };
  boost::json::array layers;
  for (const auto& l : layers_) {
    boost::json::array inbound;
    for (const auto& weak : LayerAccess::nodes(*l)) {
      auto node = weak.lock();
      if (!node || !model_nodes.count(node.get()) || l->is_input()) continue;
      boost::json::array args;
      for (const KerasTensor& in : node->inputs) {
        boost::json::array r = ref(in);
        r.push_back(boost::json::object{});
        args.push_back(r);
      }
      inbound.push_back(args);
    }
    layers.push_back(boost::json::object{{"class_name", l->class_name()},
                                         {"config", l->get_config()},
                                         {"name", l->name()},
                                         {"inbound_nodes", inbound}});
  }
  boost::json::array in, out;
  for (const KerasTensor& t : inputs_) in.push_back(ref(t));
  for (const KerasTensor& t : outputs_) out.push_back(ref(t));
  return {{"name", name_}, {"trainable", true}, {"layers", layers}, {"input_layers", in}, {"output_layers", out}};
}

std::string Model::to_json() const {
  boost::json::object o{{"class_name", sequential_ ? "Sequential" : "Functional"},
                        {"config", get_config()},
                        {"keras_version", "2.14.0"},
                        {"backend", "tensorflow"}};
  return sdk::json_text(o);
}

Model model_from_json(const std::string& json_text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json_text, ec);
  if (ec) throw Error("model JSON is not valid JSON: " + ec.message());
  return Model::from_config(v);
}

}  // namespace lamina
