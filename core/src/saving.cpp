// Keras' legacy HDF5 model files: Model::save / save_weights / load_weights, load_model.
// The layout and its per-version variants are described in docs/keras_files.md. Everything here
// goes through the generic Layer interface (weights, weight names, get_config) and the optimizer
// state, so no layer or optimizer is special-cased.
#include "graph.hpp"
#include "host_table.hpp"
#include "model.hpp"
#include "text.hpp"

#include <lamina/h5.hpp>
#include <lamina/model.hpp>
#include <lamina/sdk/json.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

namespace lamina {

namespace {

namespace json = boost::json;

// What lamina writes as keras_version: files follow tf.keras 2.x (docs/keras_files.md); loaders
// only special-case a missing attribute (Keras 1).
constexpr const char* kKerasVersion = "2.14.0";
constexpr const char* kBackend = "tensorflow";
// Keras splits a string-list attribute past this many bytes into name0, name1, ...
constexpr size_t kAttributeLimit = 64512;

void warn(const std::string& message) {
  host_table()->log(2, ("warning: " + message).c_str());
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string strip_device_suffix(const std::string& name) {
  return ends_with(name, ":0") ? name.substr(0, name.size() - 2) : name;
}

bool is_ascii(const std::vector<std::string>& values) {
  for (const auto& v : values)
    for (unsigned char c : v)
      if (c >= 0x80) return false;
  return true;
}

// A string-list attribute as Keras' load_attributes_from_hdf5_group reads it: `name`, or the
// chunks `name0`, `name1`, ... written when the list is too long for one attribute.
std::optional<std::vector<std::string>> read_strings(const h5::File& f, const std::string& object,
                                                     const std::string& name) {
  if (f.has_attribute(object, name)) return f.strings_attribute(object, name);
  if (!f.has_attribute(object, name + "0")) return std::nullopt;
  std::vector<std::string> out;
  for (int i = 0; f.has_attribute(object, name + std::to_string(i)); ++i) {
    auto part = f.strings_attribute(object, name + std::to_string(i));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// Fixed-length strings (readable as bytes by every h5py and so by every Keras), split like
// Keras' save_attributes_to_hdf5_group when the list is too long for one object header.
void write_strings(h5::File& f, const std::string& object, const std::string& name,
                   const std::vector<std::string>& values) {
  h5::StringType type = is_ascii(values) ? h5::StringType::fixed_ascii : h5::StringType::fixed_utf8;
  size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  size_t bytes = width * values.size();
  if (bytes < kAttributeLimit) {
    f.set_attribute(object, name, values, type);
    return;
  }
  if (width >= kAttributeLimit)
    throw Error(f.path() + ": a name in attribute '" + name + "' of '" + object + "' is " +
                std::to_string(width) + " bytes long, more than an HDF5 attribute holds; use shorter names");
  size_t chunks = (bytes + kAttributeLimit - 1) / kAttributeLimit;
  while ((values.size() + chunks - 1) / chunks * width >= kAttributeLimit) ++chunks;
  size_t per = (values.size() + chunks - 1) / chunks;
  for (size_t c = 0, i = 0; i < values.size(); ++c, i += per) {
    std::vector<std::string> part(values.begin() + long(i),
                                  values.begin() + long(std::min(values.size(), i + per)));
    f.set_attribute(object, name + std::to_string(c), part, type);
  }
}

// glorot_uniform and friends as {"class_name", "config"} objects, the way Keras 2.2 wrote them:
// VarianceScaling exists under that name in every Keras version.
json::value keras_initializer(const json::value& v) {
  if (!v.is_string()) return v;
  std::string key;
  for (char c : std::string(v.as_string()))
    if (c != '_') key += char(std::tolower(static_cast<unsigned char>(c)));
  auto variance = [](double scale, const char* mode, const char* distribution) {
    return json::value(json::object{
        {"class_name", "VarianceScaling"},
        {"config", {{"scale", scale}, {"mode", mode}, {"distribution", distribution}, {"seed", nullptr}}}});
  };
  if (key == "glorotuniform") return variance(1.0, "fan_avg", "uniform");
  if (key == "glorotnormal") return variance(1.0, "fan_avg", "truncated_normal");
  if (key == "heuniform") return variance(2.0, "fan_in", "uniform");
  if (key == "henormal") return variance(2.0, "fan_in", "truncated_normal");
  if (key == "lecununiform") return variance(1.0, "fan_in", "uniform");
  if (key == "lecunnormal") return variance(1.0, "fan_in", "truncated_normal");
  if (key == "zeros" || key == "zero")
    return json::object{{"class_name", "Zeros"}, {"config", json::object{}}};
  if (key == "ones" || key == "one") return json::object{{"class_name", "Ones"}, {"config", json::object{}}};
  return v;
}

// Keras 3 adds "module" and "registered_name" to nested objects; Keras 2 readers do not expect them.
void plain_objects(json::value& v) {
  if (v.is_array())
    for (auto& x : v.as_array()) plain_objects(x);
  if (!v.is_object()) return;
  json::object& o = v.as_object();
  if (o.contains("class_name")) {
    o.erase("module");
    o.erase("registered_name");
  }
  for (auto& [k, x] : o) plain_objects(x);
}

// A layer's config as tf.keras 2.x writes it: initializers as objects, no Keras 3 envelopes.
void keras_layer_config(json::object& c) {
  for (auto& [k, v] : c) {
    if (ends_with(std::string(k), "_initializer")) v = keras_initializer(v);
    plain_objects(v);
  }
}

// The model config in the tf.keras 2.x form every Keras reads (docs/keras_files.md, "Writing"):
// an InputLayer with batch_input_shape, dtype, sparse and name only; for a Sequential model the
// same batch_input_shape on the first layer; initializers as objects. A graph is written as
// tf.keras' "Functional" config, with inbound nodes as nested lists.
json::object keras_model_config(const Model& model) {
  json::object config = model.get_config();
  json::array& layers = config.at("layers").as_array();
  if (!model.is_sequential()) {
    for (json::value& entry : layers) {
      json::object& e = entry.as_object();
      json::object& c = e.at("config").as_object();
      if (e.at("class_name").as_string() == "InputLayer")
        c.erase("ragged");
      else if (c.contains("layers"))
        continue;  // a nested model, written by its own get_config
      else
        keras_layer_config(c);
    }
    return {{"class_name", "Functional"}, {"config", config}};
  }
  json::value batch_shape;
  for (size_t i = 0; i < layers.size(); ++i) {
    json::object& entry = layers[i].as_object();
    json::object& c = entry.at("config").as_object();
    if (entry.at("class_name").as_string() == "InputLayer") {
      c.erase("ragged");
      batch_shape = c.at("batch_input_shape");
      continue;
    }
    if (!batch_shape.is_null()) {
      json::object with_shape;
      for (auto& [k, v] : c) {
        with_shape[k] = v;
        if (k == "dtype") with_shape["batch_input_shape"] = batch_shape;
      }
      if (!with_shape.contains("batch_input_shape")) with_shape["batch_input_shape"] = batch_shape;
      c = std::move(with_shape);
      batch_shape = nullptr;
    }
    keras_layer_config(c);
  }
  return {{"class_name", "Sequential"}, {"config", config}};
}

json::object training_config(const Model& model) {
  const CompileOptions& o = model.compile_options();
  json::value loss = json::string(o.loss);
  if (o.from_logits) {
    // Keras' class names for the losses that take logits.
    std::string key = lower(o.loss);
    key.erase(std::remove(key.begin(), key.end(), '_'), key.end());
    std::string cls = key == "binarycrossentropy"              ? "BinaryCrossentropy"
                      : key == "sparsecategoricalcrossentropy" ? "SparseCategoricalCrossentropy"
                                                               : "CategoricalCrossentropy";
    std::string name = cls == "BinaryCrossentropy"              ? "binary_crossentropy"
                       : cls == "SparseCategoricalCrossentropy" ? "sparse_categorical_crossentropy"
                                                                : "categorical_crossentropy";
    loss = json::object{{"class_name", cls}, {"config", {{"name", name}, {"from_logits", true}}}};
  }
  json::value loss_weights = nullptr;
  if (!o.losses.empty() || model.outputs().size() > 1) {  // one loss per output, by name
    json::object per_output, weights;
    for (const std::string& name : model.output_names()) {
      auto it = o.losses.find(name);
      per_output[name] = it != o.losses.end() ? it->second : o.loss;
      auto w = o.loss_weights.find(name);
      weights[name] = w != o.loss_weights.end() ? w->second : 1.0;
    }
    loss = per_output;
    if (!o.loss_weights.empty()) loss_weights = weights;
  }
  json::array metrics;
  for (const auto& m : o.metrics) metrics.push_back(json::string(m));
  OptimizerState state = model.optimizer_state();
  return {
      {"loss", loss},
      {"metrics", metrics},
      {"weighted_metrics", nullptr},
      {"sample_weight_mode", nullptr},
      {"loss_weights", loss_weights},
      {"optimizer_config", {{"class_name", state.optimizer.class_name}, {"config", state.optimizer.config}}}};
}

std::string weight_path(const std::string& layer, const std::string& weight) {
  return layer + "/" + weight + ":0";
}

// The name weight k of `l` has in model_weights/<layer>: "dense/kernel:0"; a nested model's weights
// are named after its own layers, as Keras does.
std::string stored_weight_name(const Layer& l, size_t k) {
  return l.model() ? l.weight_names()[k] + ":0" : weight_path(l.name(), l.weight_names()[k]);
}

void check_name(const std::string& name, const std::string& path) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw Error("cannot save " + path + ": layer name '" + name +
                "' cannot be a group name in the file (no '/', not empty); give the layer another name");
}

// `group` ("/" for a weights-only file): layer_names, backend, keras_version, one group per layer.
void write_weights(h5::File& f, const std::string& group, const Model& model, const std::string& path) {
  f.create_group(group);
  std::vector<std::string> names;
  for (size_t i = 0; i < model.size(); ++i) names.push_back(model.layer(i).name());
  write_strings(f, group, "layer_names", names);
  f.set_attribute(group, "backend", kBackend, h5::StringType::fixed_ascii);
  f.set_attribute(group, "keras_version", kKerasVersion, h5::StringType::fixed_ascii);
  std::string prefix = group == "/" ? "" : group + "/";
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& l = model.layer(i);
    check_name(l.name(), path);
    std::string g = prefix + l.name();
    f.create_group(g);
    std::vector<std::string> weight_names;
    for (size_t k = 0; k < l.weights().size(); ++k) {
      // A nested model's weights are named after its own layers ("dense/kernel:0"), as Keras does.
      std::string w = stored_weight_name(l, k);
      weight_names.push_back(w);
      f.write(g + "/" + w, l.weights()[k]);
    }
    write_strings(f, g, "weight_names", weight_names);
  }
  // tf.keras >= 2.6 and Keras 3 keep weights owned by the model itself here; lamina's have none.
  f.create_group(prefix + "top_level_model_weights");
  f.set_attribute(prefix + "top_level_model_weights", "weight_names", std::vector<std::string>{});
}

// Keras 3's optimizers create their slots in groups: the slot kinds of one group interleaved per
// weight (Adam: w0 momentum, w0 velocity, w1 momentum, ...), one group after the other (RMSprop:
// every velocity, then every momentum). The classes whose kinds share a group; any other slot kind,
// a plugin optimizer's too, is a group of its own.
std::vector<std::vector<size_t>> keras3_slot_groups(const std::string& optimizer,
                                                    const std::vector<std::string>& slot_names) {
  static const std::map<std::string, std::vector<std::string>> shared{
      {"Adam", {"momentum", "velocity"}},
      {"AdamW", {"momentum", "velocity"}},
      {"Adadelta", {"accumulated_grad", "accumulated_delta"}},
  };
  std::vector<std::vector<size_t>> groups;
  std::vector<size_t> first;
  auto it = shared.find(optimizer);
  for (size_t k = 0; k < slot_names.size(); ++k) {
    if (it != shared.end() &&
        std::find(it->second.begin(), it->second.end(), slot_names[k]) != it->second.end())
      first.push_back(k);
    else
      groups.push_back({k});
  }
  if (!first.empty()) groups.insert(groups.begin(), first);
  return groups;
}

// Keras 3 names a slot after the optimizer (snake case) and the weight's path:
// "adam/dense_kernel_momentum"; Adadelta's second slot is its "accumulated_delta_var".
std::string keras3_slot_name(const std::string& optimizer, const std::string& weight,
                             const std::string& slot) {
  std::string flat = weight.substr(0, weight.size() - (weight.ends_with(":0") ? 2 : 0));
  std::replace(flat.begin(), flat.end(), '/', '_');
  return snake_case(optimizer) + "/" + flat + "_" +
         (slot == "accumulated_delta" ? "accumulated_delta_var" : slot);
}

// Both Kerases restore optimizer_weights by position, in orders no single list satisfies
// (docs/keras_files.md), so the file follows the one asked for:
// - tf_keras: the order of tf.keras' OptimizerV2 (which tf_keras builds from a plain class name such
//   as "Adam"): the step counter, then one slot kind for every weight, then the next kind; names
//   follow tf.keras' "Adam/dense/kernel/m:0" with lamina's slot names.
// - keras3: Keras 3's optimizer.variables: the step counter, the learning rate (when it is a number,
//   not a schedule), then the slots in Keras 3's groups; names as Keras 3 writes them.
void write_optimizer(h5::File& f, const Model& model, OptimizerLayout layout) {
  OptimizerState s = model.optimizer_state();
  const std::string& optimizer = s.optimizer.class_name;
  f.create_group("optimizer_weights");
  std::vector<std::string> names;
  auto write = [&](const std::string& name, const Tensor& value) {
    names.push_back(name);
    f.write("optimizer_weights/" + name, value);
  };
  if (layout == OptimizerLayout::tf_keras) {
    names.push_back(optimizer + "/iter:0");
    f.write("optimizer_weights/" + names[0], &s.iterations, Shape{});
    for (size_t k = 0; k < s.slot_names.size(); ++k)
      for (size_t i = 0; i < s.weights.size(); ++i)
        write(optimizer + "/" + s.weights[i] + "/" + s.slot_names[k] + ":0", s.slots[i][k]);
  } else {
    // The weights' names in the file, which Keras 3's slot names repeat.
    std::map<std::string, std::string> stored;
    for (size_t i = 0; i < model.size(); ++i)
      for (size_t k = 0; k < model.layer(i).weights().size(); ++k)
        stored[model.layer(i).name() + "/" + model.layer(i).weight_names()[k]] =
            stored_weight_name(model.layer(i), k);
    names.push_back(snake_case(optimizer) + "/iteration");
    f.write("optimizer_weights/" + names[0], &s.iterations, Shape{});
    const json::value* rate = s.optimizer.config.if_contains("learning_rate");
    if (rate && rate->is_number()) {
      const float value = rate->to_number<float>();
      names.push_back(snake_case(optimizer) + "/learning_rate");
      f.write("optimizer_weights/" + names.back(), &value, Shape{});
    }
    for (const std::vector<size_t>& group : keras3_slot_groups(optimizer, s.slot_names))
      for (size_t i = 0; i < s.weights.size(); ++i)
        for (size_t k : group)
          write(keras3_slot_name(optimizer, stored.at(s.weights[i]), s.slot_names[k]), s.slots[i][k]);
  }
  write_strings(f, "optimizer_weights", "weight_names", names);
}

// Where training stands beyond the optimizer (TrainingState), in a group of lamina's own: Keras
// reads only the objects it knows (model_config, training_config, model_weights,
// optimizer_weights) and ignores this one, so the file stays a Keras file.
constexpr const char* kTrainingStateGroup = "lamina_training_state";

void write_training_state(h5::File& f, const Model& model) {
  TrainingState s = model.training_state();
  f.create_group(kTrainingStateGroup);
  f.set_attribute(kTrainingStateGroup, "epoch", s.epoch);
  if (!s.rng.empty()) f.set_attribute(kTrainingStateGroup, "rng", s.rng, h5::StringType::fixed_ascii);
  f.write(std::string(kTrainingStateGroup) + "/data_order", s.data_order,
          Shape{int64_t(s.data_order.size())});
}

// Restores the training state; returns why it was not ("" when it was).
std::string restore_training_state(const h5::File& f, Model& model) {
  const std::string g = kTrainingStateGroup;
  TrainingState s;
  if (!f.has_attribute(g, "epoch") || !f.is_dataset(g + "/data_order"))
    return "it lacks the epoch or data_order";
  std::vector<double> epoch = f.numbers_attribute(g, "epoch");
  if (epoch.size() != 1 || !(epoch[0] >= 0) || epoch[0] > 1e9) return "its epoch is not a count";
  s.epoch = int64_t(epoch[0]);
  if (f.has_attribute(g, "rng")) s.rng = f.string_attribute(g, "rng");  // absent before the first fit()
  h5::DatasetInfo info = f.info(g + "/data_order");
  if (info.shape.size() != 1 || info.shape[0] > (int64_t(1) << 31) ||
      (info.dtype != h5::DType::int64 && info.dtype != h5::DType::int32))
    return "data_order is not a list of sample indices";
  s.data_order = f.read<int64_t>(g + "/data_order");
  try {
    model.set_training_state(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ------------------------------------------------------------------------------------------------
// reading

struct FileLayer {
  std::string name;
  std::vector<std::string> weights;  // as listed in weight_names
};

std::vector<FileLayer> read_layers(const h5::File& f, const std::string& group) {
  auto names = read_strings(f, group, "layer_names");
  if (!names)
    throw Error(f.path() + ": '" + group + "' has no 'layer_names' attribute, so it holds no Keras weights");
  std::string prefix = group == "/" ? "" : group + "/";
  std::vector<FileLayer> out;
  for (const auto& n : *names) {
    if (!f.is_group(prefix + n))
      throw Error(f.path() + ": layer_names lists layer '" + n + "' but there is no group '" + prefix + n +
                  "'");
    auto w = read_strings(f, prefix + n, "weight_names");
    if (!w)
      throw Error(f.path() + ": layer '" + n + "' (group '" + prefix + n +
                  "') has no 'weight_names' attribute");
    out.push_back({n, *w});
  }
  return out;
}

// The most elements any stored weight really has: a bound for the layers the config declares.
int64_t largest_stored_weight(const h5::File& f, const std::string& group,
                              const std::vector<FileLayer>& layers) {
  std::string prefix = group == "/" ? "" : group + "/";
  int64_t largest = 0;
  for (const auto& l : layers)
    for (const auto& w : l.weights) {
      std::string p = prefix + l.name + "/" + w;
      if (!f.is_dataset(p)) continue;  // reported when the weights are read
      h5::DatasetInfo info = f.info(p);
      int64_t n = 1;
      for (int64_t d : info.shape)
        n = d > 0 && n <= (int64_t(1) << 40) / d ? n * d : (d == 0 ? 0 : int64_t(1) << 40);
      // Every element takes at least a byte, so the stored bytes bound what can be real.
      largest =
          std::max(largest, std::min<int64_t>(n, int64_t(std::min<uint64_t>(info.stored_bytes, 1ull << 40))));
    }
  return largest;
}

// Lowers the weight limit while layers are built from a file's config.
struct WeightLimitScope {
  WeightLimit saved = weight_limit();
  WeightLimitScope(int64_t elements, const std::string& source) {
    weight_limit().elements = std::min(saved.elements, elements);
    weight_limit().source = source;
  }
  ~WeightLimitScope() { weight_limit() = saved; }
};

std::string list_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

// Theano convolves (flips the kernel), TensorFlow correlates: Keras flips the spatial axes of
// convolution kernels from Theano files when loading them, and so does lamina.
void flip_spatial(std::vector<float>& v, const Shape& s) {
  int64_t kh = s[0], kw = s[1], inner = s[2] * s[3];
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j)
      std::copy_n(v.begin() + ((kh - 1 - i) * kw + (kw - 1 - j)) * inner, inner,
                  out.begin() + (i * kw + j) * inner);
  v.swap(out);
}

// Reads the weights of `group` into `model`, layer by layer in order as Keras does ("topological"
// loading): file layers with weights pair up with model layers with weights. Everything is read
// and checked before anything is assigned. Returns, for each model weight "layer/weight", the
// name the file gave it (for the optimizer slots that follow those names).
std::map<std::string, std::string> read_weights(const h5::File& f, const std::string& group, Model& model) {
  std::vector<FileLayer> file_layers;
  for (auto& l : read_layers(f, group))
    if (!l.weights.empty()) file_layers.push_back(std::move(l));
  std::vector<Layer*> model_layers;
  for (size_t i = 0; i < model.size(); ++i)
    if (!model.layer(i).weights().empty()) model_layers.push_back(&model.layer(i));
  if (file_layers.size() != model_layers.size()) {
    std::vector<std::string> a, b;
    for (auto& l : file_layers) a.push_back(l.name);
    for (auto* l : model_layers) b.push_back(l->name());
    throw Error(f.path() + ": the file has weights for " + std::to_string(a.size()) + " layers (" +
                list_names(a) + ") but the model has " + std::to_string(b.size()) + " layers with weights (" +
                list_names(b) + ")");
  }
  bool theano = f.has_attribute(group, "backend") && f.string_attribute(group, "backend") == "theano";
  if (!theano && f.has_attribute("/", "backend")) theano = f.string_attribute("/", "backend") == "theano";
  std::string prefix = group == "/" ? "" : group + "/";
  std::vector<std::vector<Tensor>> values;
  std::map<std::string, std::string> names;
  for (size_t i = 0; i < file_layers.size(); ++i) {
    const FileLayer& fl = file_layers[i];
    Layer& ml = *model_layers[i];
    std::string which = "layer '" + ml.name() + "' (" + ml.class_name() + ")" +
                        (fl.name != ml.name() ? " and the file's layer '" + fl.name + "'" : "");
    if (fl.weights.size() != ml.weights().size())
      throw Error(f.path() + ": " + which + ": the layer has " + std::to_string(ml.weights().size()) +
                  " weights (" + list_names(ml.weight_names()) + ") but the file stores " +
                  std::to_string(fl.weights.size()) + " (" + list_names(fl.weights) + ")");
    std::vector<Tensor> layer_values;
    for (size_t k = 0; k < fl.weights.size(); ++k) {
      std::string p = prefix + fl.name + "/" + fl.weights[k];
      if (!f.is_dataset(p))
        throw Error(f.path() + ": " + which + ": weight '" + fl.weights[k] + "' is missing (no dataset '" +
                    p + "')");
      h5::DatasetInfo info = f.info(p);
      const Shape& expected = ml.weights()[k].shape();
      if (info.shape != expected)
        throw Error(f.path() + ": " + which + ": weight '" + fl.weights[k] + "' has shape " +
                    shape_to_string(info.shape) + " in the file, but the layer's " + ml.weight_names()[k] +
                    " has shape " + shape_to_string(expected) + "; the file's weights do not fit this model");
      if (info.dtype != h5::DType::float32 && info.dtype != h5::DType::float64)
        throw Error(f.path() + ": " + which + ": weight '" + fl.weights[k] + "' holds " +
                    h5::dtype_name(info.dtype) + " values; Keras weights are floating point");
      std::vector<float> v = f.read<float>(p);
      if (theano && ml.class_name() == "Conv2D" && expected.size() == 4) flip_spatial(v, expected);
      layer_values.push_back(Tensor::from_vector(v, expected));
      names[ml.name() + "/" + ml.weight_names()[k]] = fl.weights[k];
    }
    values.push_back(std::move(layer_values));
  }
  for (size_t i = 0; i < model_layers.size(); ++i) model_layers[i]->set_weights(values[i]);
  return names;
}

// training_config → compile options; throws with the key at fault.
// `outputs`: the model's output names, for losses and loss weights given as lists (one per output).
CompileOptions compile_options_from(const json::value& tc, const std::vector<std::string>& outputs = {}) {
  if (!tc.is_object()) throw Error("training_config is not a JSON object");
  const json::object& o = tc.as_object();
  CompileOptions co;
  const json::value* loss = o.if_contains("loss");
  // One output: Keras may wrap its loss in a one-element list or dict.
  if (loss && loss->is_array() && loss->as_array().size() == 1) loss = &loss->as_array()[0];
  if (loss && loss->is_object() && !loss->as_object().contains("class_name") && loss->as_object().size() == 1)
    loss = &loss->as_object().begin()->value();
  if (!loss || loss->is_null()) throw Error("training_config has no 'loss'");
  auto loss_name = [&](const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_object() && v.as_object().contains("class_name") && v.as_object().at("class_name").is_string()) {
      if (auto* c = v.as_object().if_contains("config"); c && c->is_object())
        if (auto* fl = c->as_object().if_contains("from_logits"); fl && fl->is_bool())
          co.from_logits = co.from_logits || fl->as_bool();
      return std::string(v.as_object().at("class_name").as_string());
    }
    throw Error("training_config: 'loss' " + json::serialize(v) + " is not a loss name or object");
  };
  // Several outputs: one loss each, by output name (a dict) or in output order (a list).
  auto per_output = [&](const json::value& v, const char* key,
                        const std::function<void(const std::string&, const json::value&)>& put) {
    if (v.is_object() && !v.as_object().contains("class_name")) {
      for (const auto& [name, x] : v.as_object()) put(std::string(name), x);
      return true;
    }
    if (!v.is_array()) return false;
    if (v.as_array().size() != outputs.size())
      throw Error(std::string("training_config: '") + key + "' lists " + std::to_string(v.as_array().size()) +
                  " values for a model of " + std::to_string(outputs.size()) + " outputs");
    for (size_t i = 0; i < outputs.size(); ++i) put(outputs[i], v.as_array()[i]);
    return true;
  };
  if (!per_output(*loss, "loss",
                  [&](const std::string& name, const json::value& x) { co.losses[name] = loss_name(x); }))
    co.loss = loss_name(*loss);
  if (auto* w = o.if_contains("loss_weights"); w && !w->is_null())
    per_output(*w, "loss_weights", [&](const std::string& name, const json::value& x) {
      if (!x.is_number())
        throw Error("training_config: loss_weights holds " + json::serialize(x) + ", not a number");
      co.loss_weights[name] = x.to_number<double>();
    });
  // Metrics: names, or Keras metric objects (possibly per output, as nested lists).
  std::function<void(const json::value&)> add_metric = [&](const json::value& m) {
    if (m.is_array()) {
      for (auto& x : m.as_array()) add_metric(x);
      return;
    }
    std::string name;
    if (m.is_string())
      name = std::string(m.as_string());
    else if (m.is_object()) {
      const json::object& mo = m.as_object();
      const json::object* c =
          mo.contains("config") && mo.at("config").is_object() ? &mo.at("config").as_object() : nullptr;
      if (c && c->contains("fn") && c->at("fn").is_string())
        name = std::string(c->at("fn").as_string());
      else if (c && c->contains("name") && c->at("name").is_string())
        name = std::string(c->at("name").as_string());
      else if (mo.contains("class_name") && mo.at("class_name").is_string())
        name = std::string(mo.at("class_name").as_string());
    }
    std::string key = lower(name);
    std::string mapped = key == "acc" || key == "accuracy"           ? name
                         : key.find("accuracy") != std::string::npos ? "accuracy"
                         : key == "mse" || key == "mean_squared_error" || key == "meansquarederror"   ? "mse"
                         : key == "mae" || key == "mean_absolute_error" || key == "meanabsoluteerror" ? "mae"
                                                                                                      : "";
    if (mapped.empty()) {
      warn("metric " + (m.is_string() ? name : json::serialize(m)) +
           " is not one lamina computes; it is left out");
      return;
    }
    if (std::find(co.metrics.begin(), co.metrics.end(), mapped) == co.metrics.end())
      co.metrics.push_back(mapped);
  };
  if (auto* m = o.if_contains("metrics"); m && !m->is_null()) add_metric(*m);
  const json::value* opt = o.if_contains("optimizer_config");
  if (!opt || !opt->is_object() || !opt->as_object().contains("class_name") ||
      !opt->as_object().at("class_name").is_string())
    throw Error("training_config has no 'optimizer_config' with a class_name");
  co.optimizer.class_name = std::string(opt->as_object().at("class_name").as_string());
  if (auto* c = opt->as_object().if_contains("config"); c && c->is_object())
    co.optimizer.config = c->as_object();
  return co;
}

// Elements of a shape read from a file, or -1 when it overflows.
int64_t checked_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > std::numeric_limits<int64_t>::max() / d)) return -1;
    n *= d;
  }
  return n;
}

// Slot names in Keras files that mean one of lamina's (Keras 3's names are lamina's own).
const std::vector<std::pair<std::string, std::string>>& slot_aliases() {
  static const std::vector<std::pair<std::string, std::string>> table{
      {"m", "momentum"},                              // tf.keras Adam
      {"v", "velocity"},                              // tf.keras Adam
      {"vhat", "velocity_hat"},                       // tf.keras Adam, amsgrad
      {"rms", "velocity"},                            // tf.keras RMSprop
      {"accum_grad", "accumulated_grad"},             // tf.keras Adadelta
      {"accum_var", "accumulated_delta"},             // tf.keras Adadelta
      {"accumulated_delta_var", "accumulated_delta"}  // Keras 3 Adadelta
  };
  return table;
}

// Restores the optimizer state when every slot is found under a naming scheme lamina knows
// (its own, tf.keras before and after 2.11, Keras 3); otherwise, like Keras, warns and keeps the
// fresh state. Returns the reason it was not restored ("" when it was).
std::string restore_optimizer(const h5::File& f, Model& model,
                              const std::map<std::string, std::string>& names) {
  auto stored = read_strings(f, "optimizer_weights", "weight_names");
  if (!stored) return "optimizer_weights has no weight_names attribute";
  OptimizerState state = model.optimizer_state();
  auto read_one = [&](const std::string& name) { return "optimizer_weights/" + name; };
  // the step counter
  std::optional<int64_t> iterations;
  for (const auto& n : *stored) {
    std::string last =
        strip_device_suffix(n.substr(n.rfind('/') == std::string::npos ? 0 : n.rfind('/') + 1));
    if (last != "iter" && last != "iteration" && last != "iterations") continue;
    if (!f.is_dataset(read_one(n))) return "its step counter '" + n + "' is missing";
    if (checked_elements(f.info(read_one(n)).shape) != 1)
      return "its step counter '" + n + "' is not one number";
    Shape s;
    std::vector<double> v = f.read<double>(read_one(n), &s);
    if (v.size() != 1 || !(v[0] >= 0) || v[0] > 9.0e15) return "its step counter '" + n + "' is not a count";
    iterations = int64_t(v[0]);
    break;
  }
  if (!iterations) return "no step counter (iter, iteration) was found";
  std::vector<std::vector<Tensor>> slots;
  for (size_t i = 0; i < state.weights.size(); ++i) {
    auto it = names.find(state.weights[i]);
    if (it == names.end()) return "weight " + state.weights[i] + " was not read from the file";
    std::string path = strip_device_suffix(it->second);
    std::string flat = path;
    std::replace(flat.begin(), flat.end(), '/', '_');
    std::vector<Tensor> weight_slots;
    for (size_t k = 0; k < state.slot_names.size(); ++k) {
      const std::string& slot = state.slot_names[k];
      std::vector<std::string> spellings{slot};
      for (const auto& [alias, meaning] : slot_aliases())
        if (meaning == slot) spellings.push_back(alias);
      std::vector<std::string> tails;
      for (const auto& s : spellings) {
        tails.push_back("/" + s + "/" + path + ":0");  // tf.keras 2.11+: Adam/m/dense/kernel:0
        tails.push_back("/" + path + "/" + s + ":0");  // lamina, tf.keras 2.x: Adam/dense/kernel/m:0
        tails.push_back("/" + flat + "_" + s);         // Keras 3: adam/sequential_dense_kernel_momentum
      }
      std::vector<std::string> found;
      for (const auto& n : *stored)
        for (const auto& t : tails)
          if (ends_with("/" + n, t)) {
            found.push_back(n);
            break;
          }
      if (found.size() != 1)
        return found.empty() ? "no " + slot + " slot was found for weight " + it->second
                             : "several " + slot + " slots match weight " + it->second;
      if (!f.is_dataset(read_one(found[0]))) return "slot '" + found[0] + "' is listed but missing";
      // The shape is checked before anything is read, so a slot cannot make lamina allocate more
      // than the weight it belongs to.
      Shape shape = f.info(read_one(found[0])).shape;
      if (shape != state.slots[i][k].shape())
        return "slot '" + found[0] + "' has shape " + shape_to_string(shape) + ", expected " +
               shape_to_string(state.slots[i][k].shape());
      std::vector<float> v = f.read<float>(read_one(found[0]), &shape);
      weight_slots.push_back(Tensor::from_vector(v, shape));
    }
    slots.push_back(std::move(weight_slots));
  }
  model.set_optimizer_state(*iterations, slots);
  return "";
}

h5::File open_for_reading(const std::string& path) {
  return h5::File(path, h5::File::read_only);
}

std::string json_error_context(const std::string& text, size_t offset) {
  size_t from = offset > 30 ? offset - 30 : 0;
  std::string s = text.substr(from, 60);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

void Model::save(const std::string& path, bool include_optimizer) const {
  save(path, SaveOptions{.include_optimizer = include_optimizer});
}

void Model::save(const std::string& path, const SaveOptions& options) const {
  const bool include_optimizer = options.include_optimizer;
  if (layers_.empty()) throw Error("cannot save " + path + ": the model has no layers");
  h5::AtomicWrite writer(path);
  h5::File& f = writer.file();
  f.set_attribute("/", "keras_version", kKerasVersion);
  f.set_attribute("/", "backend", kBackend);
  f.set_attribute("/", "model_config", sdk::json_text(keras_model_config(*this)));
  bool with_training = include_optimizer && compiled();
  if (with_training) f.set_attribute("/", "training_config", sdk::json_text(training_config(*this)));
  write_weights(f, "model_weights", *this, path);
  if (with_training) {
    write_optimizer(f, *this, options.optimizer_layout);
    write_training_state(f, *this);
  }
  writer.commit();
}

void Model::save_weights(const std::string& path) const {
  if (layers_.empty()) throw Error("cannot save " + path + ": the model has no layers");
  h5::AtomicWrite writer(path);
  write_weights(writer.file(), "/", *this, path);
  writer.commit();
}

void Model::load_weights(const std::string& path) {
  h5::File f = open_for_reading(path);
  std::string group;
  if (f.has_attribute("/", "layer_names") || f.has_attribute("/", "layer_names0"))
    group = "/";
  else if (f.is_group("model_weights"))
    group = "model_weights";
  else if (f.is_group("layers") || f.is_group("vars"))
    throw Error(path +
                ": this is Keras 3's .weights.h5 layout, which lamina does not read; in Keras, save the "
                "model with model.save(\"model.h5\") or weights with the legacy .h5 format");
  else
    throw Error(path +
                ": no Keras weights here (neither a 'layer_names' attribute nor a 'model_weights' group)");
  read_weights(f, group, *this);
}

std::optional<CompileOptions> load_training_config(const std::string& path) {
  h5::File f = open_for_reading(path);
  if (!f.has_attribute("/", "training_config")) return std::nullopt;
  boost::system::error_code ec;
  json::value tc = json::parse(f.string_attribute("/", "training_config"), ec);
  if (ec) throw Error(path + ": attribute 'training_config' is not valid JSON (" + ec.message() + ")");
  try {
    return compile_options_from(tc);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

Model load_model(const std::string& path, bool compile) {
  h5::File f = open_for_reading(path);
  if (!f.has_attribute("/", "model_config")) {
    if (f.has_attribute("/", "layer_names") || f.has_attribute("/", "layer_names0"))
      throw Error(path +
                  ": this file holds weights only (save_weights); build the model in code and call "
                  "load_weights(\"" +
                  path + "\")");
    throw Error(path + ": no 'model_config' attribute, so this is not a Keras model file");
  }
  std::string text = f.string_attribute("/", "model_config");
  boost::system::error_code ec;
  json::parser parser;
  size_t used = parser.write(text.data(), text.size(), ec);
  if (ec)
    throw Error(path + ": attribute 'model_config' is not valid JSON (" + ec.message() + " at character " +
                std::to_string(used) + ", near \"" + json_error_context(text, used) + "\")");
  json::value config = parser.release();
  if (!config.is_object() && !config.is_array())
    throw Error(path +
                ": attribute 'model_config' is not a model config (expected {\"class_name\": \"Sequential\", "
                "\"config\": ...}, got " +
                json::serialize(config).substr(0, 80) + ")");
  if (!f.has_attribute("/", "keras_version"))
    warn(path + ": no keras_version attribute (a Keras 1 file?); weights are read as Keras 2 lays them out");
  if (!f.is_group("model_weights"))
    throw Error(path + ": no 'model_weights' group; the file has a model config but no weights");
  std::vector<FileLayer> file_layers = read_layers(f, "model_weights");

  auto model = [&] {
    WeightLimitScope limit(largest_stored_weight(f, "model_weights", file_layers),
                           "the largest weight stored in " + path);
    try {
      return Model::from_config(config);
    } catch (const Error& e) {
      throw Error(path + ": model_config: " + e.what());
    }
  }();
  std::map<std::string, std::string> names = read_weights(f, "model_weights", model);

  if (!compile || !f.has_attribute("/", "training_config")) return model;
  std::string training_text = f.string_attribute("/", "training_config");
  json::value tc = json::parse(training_text, ec);
  try {
    if (ec) throw Error("training_config is not valid JSON (" + ec.message() + ")");
    model.compile(compile_options_from(tc, model.output_names()));
  } catch (const Error& e) {
    warn(path + ": " + e.what() +
         "; the model is loaded uncompiled — compile it before training or evaluating");
    return model;
  }
  if (f.is_group("optimizer_weights")) {
    std::string why = restore_optimizer(f, model, names);
    if (!why.empty())
      warn(path + ": the optimizer state was not restored (" + why + "); training continues from a fresh " +
           model.optimizer_state().optimizer.class_name + " state");
    if (why.empty() && f.is_group(kTrainingStateGroup)) {
      why = restore_training_state(f, model);
      if (!why.empty())
        warn(path + ": the training state (epoch, random generator, data order) was not restored (" + why +
             "); resumed training will not repeat an uninterrupted run exactly");
    }
  }
  return model;
}

}  // namespace lamina
