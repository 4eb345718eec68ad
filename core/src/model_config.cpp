// Models from Keras configs: Sequential layer lists and functional graphs, as Keras 2.x, tf.keras
// (inbound nodes as nested lists) and Keras 3 (inbound nodes as call arguments holding
// __keras_tensor__ objects) write them.
#include "graph.hpp"
#include "text.hpp"

#include <lamina/model.hpp>

#include <algorithm>
#include <set>

namespace lamina {

namespace json = boost::json;

namespace {

std::string text_of(const json::value& v, size_t limit = 80) {
  std::string s = json::serialize(v);
  return s.size() > limit ? s.substr(0, limit) + "..." : s;
}

bool is_model_class(const std::string& cls) { return cls == "Functional" || cls == "Model" || cls == "Sequential"; }

// A reference to one output of one call of a layer: [name, node index, tensor index].
struct Ref {
  std::string layer;
  int64_t node = 0, tensor = 0;
};

Ref parse_ref(const json::value& v, const std::string& where) {
  auto bad = [&] {
    return Error(where + ": " + text_of(v) + " is not a tensor reference ([layer name, node index, tensor index])");
  };
  const json::array* a = v.if_array();
  if (!a || a->size() < 3 || !(*a)[0].is_string()) throw bad();
  Ref r{std::string((*a)[0].as_string())};
  for (int k : {1, 2}) {
    const json::value& x = (*a)[size_t(k)];
    if (!x.is_int64() || x.as_int64() < 0 || x.as_int64() > 1'000'000) throw bad();
    (k == 1 ? r.node : r.tensor) = x.as_int64();
  }
  return r;
}

// input_layers / output_layers: one reference (Keras 3, one tensor) or a list of them.
std::vector<Ref> parse_refs(const json::value* v, const std::string& where) {
  if (!v || !v->is_array() || v->as_array().empty())
    throw Error(where + " must list the model's tensors as [layer name, node index, tensor index]");
  const json::array& a = v->as_array();
  if (a[0].is_string()) return {parse_ref(*v, where)};
  std::vector<Ref> out;
  for (const json::value& r : a) out.push_back(parse_ref(r, where));
  return out;
}

// Keras 3's call arguments: every __keras_tensor__ in `v`, in order.
void collect_keras_tensors(const json::value& v, std::vector<Ref>& out, const std::string& where) {
  if (const json::array* a = v.if_array()) {
    for (const json::value& x : *a) collect_keras_tensors(x, out, where);
    return;
  }
  const json::object* o = v.if_object();
  if (!o) return;  // a constant argument
  auto* cls = o->if_contains("class_name");
  if (cls && cls->is_string() && cls->as_string() == "__keras_tensor__") {
    auto* config = o->if_contains("config");
    auto* history = config && config->is_object() ? config->as_object().if_contains("keras_history") : nullptr;
    if (!history) throw Error(where + ": a __keras_tensor__ without keras_history");
    out.push_back(parse_ref(*history, where + ": keras_history"));
    return;
  }
  for (const auto& [k, x] : *o) collect_keras_tensors(x, out, where);
}

// One inbound node: the tensors a call of the layer read.
std::vector<Ref> parse_node(const json::value& node, const std::string& where) {
  std::vector<Ref> refs;
  if (const json::object* o = node.if_object()) {  // Keras 3: {"args": [...], "kwargs": {...}}
    auto* args = o->if_contains("args");
    if (!args || !args->is_array()) throw Error(where + ": a Keras 3 inbound node needs an 'args' list");
    collect_keras_tensors(*args, refs, where);
    if (auto* kwargs = o->if_contains("kwargs"); kwargs && kwargs->is_object()) {
      std::vector<Ref> extra;
      collect_keras_tensors(*kwargs, extra, where);
      if (!extra.empty())
        throw Error(where + ": tensors passed as keyword arguments (" + text_of(*kwargs) +
                    ") are not supported; lamina passes a layer its inputs only");
    }
  } else if (const json::array* a = node.if_array()) {  // Keras 2: [[name, node, tensor, kwargs], ...]
    for (const json::value& r : *a) refs.push_back(parse_ref(r, where));
  } else {
    throw Error(where + ": inbound node " + text_of(node) + " is neither a list nor an object");
  }
  if (refs.empty()) throw Error(where + ": an inbound node without input tensors");
  return refs;
}

struct FileLayer {
  std::string class_name, name;
  json::object config;
  std::vector<std::vector<Ref>> nodes;  // the calls, in order
  std::shared_ptr<Layer> layer;
  std::vector<std::vector<KerasTensor>> outputs;  // of the calls made so far
};

Model functional_from_config(const json::object& c) {
  std::string name = "model";
  if (auto* n = c.if_contains("name"); n && n->is_string()) name = std::string(n->as_string());
  const std::string model_where = "model '" + name + "'";
  auto* list = c.if_contains("layers");
  if (!list || !list->is_array()) throw Error(model_where + ": the config has no 'layers' list");
  std::vector<FileLayer> layers;
  std::map<std::string, size_t> by_name;
  size_t index = 0;
  for (const json::value& entry : list->as_array()) {
    ++index;
    const json::object* e = entry.if_object();
    const json::value* cls = e ? e->if_contains("class_name") : nullptr;
    if (!cls || !cls->is_string())
      throw Error(model_where + ": layer #" + std::to_string(index) + " has no class_name");
    FileLayer fl;
    fl.class_name = std::string(cls->as_string());
    if (auto* cfg = e->if_contains("config"); cfg && cfg->is_object()) fl.config = cfg->as_object();
    if (auto* n = e->if_contains("name"); n && n->is_string()) fl.name = std::string(n->as_string());
    else if (auto* n2 = fl.config.if_contains("name"); n2 && n2->is_string()) fl.name = std::string(n2->as_string());
    if (fl.name.empty())
      throw Error(model_where + ": layer #" + std::to_string(index) + " (" + fl.class_name + ") has no name");
    const std::string where = model_where + ", layer '" + fl.name + "' (" + fl.class_name + ")";
    if (by_name.count(fl.name)) throw Error(model_where + ": two layers are named '" + fl.name + "'");
    if (auto* inbound = e->if_contains("inbound_nodes"); inbound && !inbound->is_null()) {
      if (!inbound->is_array()) throw Error(where + ": inbound_nodes must be a list");
      size_t k = 0;
      for (const json::value& node : inbound->as_array())
        fl.nodes.push_back(parse_node(node, where + ", inbound node " + std::to_string(k++)));
    }
    if (lower(fl.class_name) == "inputlayer") {
      if (!fl.nodes.empty()) throw Error(where + ": an InputLayer has no inbound nodes");
      auto shape = declared_input_shape(fl.config, where);
      if (!shape) throw Error(where + ": needs batch_input_shape, batch_shape or shape");
      for (const char* flag : {"sparse", "ragged"})
        if (auto* v = fl.config.if_contains(flag); v && v->is_bool() && v->as_bool())
          throw Error(where + ": " + flag + " inputs are not supported; set \"" + flag + "\": false");
      check_dtype(fl.config, where, true);
      KerasTensor input = Input(*shape, fl.name);
      fl.layer = input.node->layer;
      fl.outputs.push_back({input});
    } else if (is_model_class(fl.class_name)) {
      json::object envelope{{"class_name", fl.class_name}, {"config", fl.config}};
      auto inner = std::make_shared<Model>(Model::from_config(envelope));
      if (inner->name() != fl.name)
        throw Error(where + ": the nested model's config names it '" + inner->name() + "'");
      fl.layer = LayerAccess::of_model(std::move(inner));
    } else {
      LayerSpec spec(fl.class_name, fl.config);
      spec.config["name"] = fl.name;
      fl.layer = LayerAccess::create(spec, fl.name);
    }
    by_name[fl.name] = layers.size();
    layers.push_back(std::move(fl));
  }
  // Every call once the calls it reads exist, in file order as far as it allows (Keras defers a
  // node whose inputs are not there yet the same way).
  std::vector<size_t> done(layers.size(), 0);
  bool progress = true, left = true;
  while (progress && left) {
    progress = left = false;
    for (size_t i = 0; i < layers.size(); ++i) {
      FileLayer& fl = layers[i];
      while (done[i] < fl.nodes.size()) {
        const std::string where = model_where + ", layer '" + fl.name + "' (" + fl.class_name + "), inbound node " +
                                  std::to_string(done[i]);
        std::vector<KerasTensor> inputs;
        bool ready = true;
        for (const Ref& r : fl.nodes[done[i]]) {
          auto it = by_name.find(r.layer);
          if (it == by_name.end())
            throw Error(where + ": it reads layer '" + r.layer + "', which the model does not have");
          const FileLayer& source = layers[it->second];
          if (r.node >= int64_t(std::max(source.nodes.size(), source.outputs.size())))
            throw Error(where + ": it reads call " + std::to_string(r.node) + " of layer '" + r.layer +
                        "', which is called only " + std::to_string(std::max(source.nodes.size(), source.outputs.size())) +
                        " time(s)");
          if (r.node >= int64_t(source.outputs.size())) {
            ready = false;
            break;
          }
          const auto& outs = source.outputs[size_t(r.node)];
          if (r.tensor >= int64_t(outs.size()))
            throw Error(where + ": it reads output " + std::to_string(r.tensor) + " of layer '" + r.layer +
                        "', which has " + std::to_string(outs.size()));
          inputs.push_back(outs[size_t(r.tensor)]);
        }
        if (!ready) {
          left = true;
          break;
        }
        try {
          fl.outputs.push_back(LayerAccess::call(fl.layer, inputs));
        } catch (const Error& e) {
          std::string what = e.what();
          throw Error(what.find(model_where) == std::string::npos ? where + ": " + what : what);
        }
        ++done[i];
        progress = true;
      }
    }
  }
  if (left) {
    std::string stuck;
    for (size_t i = 0; i < layers.size(); ++i)
      if (done[i] < layers[i].nodes.size()) stuck += (stuck.empty() ? "'" : ", '") + layers[i].name + "'";
    throw Error(model_where + ": layers " + stuck +
                " wait for each other's outputs (a cycle in inbound_nodes); a model's graph must be acyclic");
  }
  auto tensors = [&](const char* key) {
    std::vector<KerasTensor> out;
    for (const Ref& r : parse_refs(c.if_contains(key), model_where + ": " + key)) {
      auto it = by_name.find(r.layer);
      if (it == by_name.end()) throw Error(model_where + ": " + key + " names layer '" + r.layer + "', which it lacks");
      const FileLayer& fl = layers[it->second];
      if (r.node >= int64_t(fl.outputs.size()) || r.tensor >= int64_t(fl.outputs[size_t(r.node)].size()))
        throw Error(model_where + ": " + key + " names output " + std::to_string(r.tensor) + " of call " +
                    std::to_string(r.node) + " of layer '" + r.layer + "', which does not exist");
      out.push_back(fl.outputs[size_t(r.node)][size_t(r.tensor)]);
    }
    return out;
  };
  std::vector<KerasTensor> inputs = tensors("input_layers"), outputs = tensors("output_layers");
  return Model(inputs, outputs, name);
}

}  // namespace

Sequential Sequential::from_config(const json::value& model_config) {
  const json::value* config = &model_config;
  if (model_config.is_object() && model_config.as_object().contains("class_name")) {
    const auto& o = model_config.as_object();
    if (!o.at("class_name").is_string())
      throw Error("model JSON: class_name must be a string, not " + text_of(o.at("class_name"), 60));
    std::string cls(o.at("class_name").as_string());
    if (cls != "Sequential")
      throw Error("model class '" + cls + "' is a graph model; load it as a lamina::Model (Model::from_config)");
    if (!o.contains("config")) throw Error("model JSON has no 'config'");
    config = &o.at("config");
  }
  const json::array* layers = nullptr;
  std::string name = "sequential";
  std::optional<Shape> build_shape;
  if (config->is_array()) {
    layers = &config->as_array();  // Keras <= 2.1: a bare list of layers
  } else if (config->is_object()) {
    const auto& c = config->as_object();
    if (auto* n = c.if_contains("name"); n && n->is_string()) name = std::string(n->as_string());
    if (auto* l = c.if_contains("layers"); l && l->is_array()) layers = &l->as_array();
    if (auto* b = c.if_contains("build_input_shape"); b && b->is_array())
      build_shape = json_shape(*b, "Sequential build_input_shape", true);
  }
  if (!layers) throw Error("model JSON: config has no 'layers' list");
  Sequential model(name);
  size_t index = 0;
  bool has_input_layer = false;
  for (const auto& entry : *layers) {
    ++index;
    if (!entry.is_object() || !entry.as_object().contains("class_name") || !entry.as_object().at("class_name").is_string())
      throw Error("model JSON: layer #" + std::to_string(index) + " has no class_name");
    const auto& e = entry.as_object();
    LayerSpec spec{std::string(e.at("class_name").as_string()), {}};
    if (auto* c = e.if_contains("config"); c && c->is_object()) spec.config = c->as_object();
    if (lower(spec.class_name) == "inputlayer") {
      if (model.size() > 0) continue;
      has_input_layer = true;
    } else if (model.size() == 0 && !has_input_layer && build_shape &&
               !first_layer_input_shape(spec.class_name, spec.config, spec.class_name)) {
      json::array batch{nullptr};
      for (int64_t d : *build_shape) batch.push_back(d);
      model.add(LayerSpec("InputLayer", {{"batch_input_shape", batch}}));
      has_input_layer = true;
    }
    model.add(spec);
  }
  return model;
}

Model Model::from_config(const json::value& model_config) {
  const json::value* config = &model_config;
  std::string cls;
  if (model_config.is_object() && model_config.as_object().contains("class_name")) {
    const auto& o = model_config.as_object();
    if (!o.at("class_name").is_string())
      throw Error("model JSON: class_name must be a string, not " + text_of(o.at("class_name"), 60));
    cls = std::string(o.at("class_name").as_string());
    if (!is_model_class(cls))
      throw Error("model class '" + cls + "' is not supported; lamina builds Sequential and Functional models");
    if (!o.contains("config")) throw Error("model JSON has no 'config'");
    config = &o.at("config");
  }
  const bool graph = cls == "Functional" || cls == "Model" ||
                     (cls.empty() && config->is_object() && config->as_object().contains("input_layers"));
  if (!graph) return Sequential::from_config(model_config);
  if (!config->is_object()) throw Error("model JSON: a " + cls + " config must be an object");
  Model model = functional_from_config(config->as_object());
  // model.layers in the file's order, which is Keras' own: weights in an .h5 file are matched to
  // layers in this order.
  std::map<std::string, size_t> rank;
  for (const json::value& entry : config->as_object().at("layers").as_array()) {
    const json::object& e = entry.as_object();
    const json::value* n = e.if_contains("name");
    if (!n || !n->is_string()) n = e.at("config").as_object().if_contains("name");
    rank.emplace(std::string(n->as_string()), rank.size());
  }
  std::stable_sort(model.layers_.begin(), model.layers_.end(),
                   [&](const auto& a, const auto& b) { return rank[a->name()] < rank[b->name()]; });
  return model;
}

}  // namespace lamina
