// Layers and the Sequential container: building from Keras configs, weights, summary, JSON.
#include "model.hpp"

#include "initializers.hpp"
#include "plugins.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/backend.hpp>
#include <lamina/model.hpp>
#include <lamina/ops.hpp>

#include <cstdio>
#include <iomanip>
#include <sstream>

namespace lamina {

namespace {

std::string snake_case(const std::string& class_name) {
  // Keras' generic_utils.to_snake_case: Conv2D → conv2d, MaxPooling2D → max_pooling2d
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

// The input shape a layer config declares, if any (Keras 2 and 3 spellings).
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

void check_dtype(const boost::json::object& c, const std::string& where) {
  auto* d = c.if_contains("dtype");
  if (!d || d->is_null()) return;
  std::string name;
  if (d->is_string()) name = std::string(d->as_string());
  else if (d->is_object() && d->as_object().contains("config")) {
    auto& cfg = d->as_object().at("config");
    if (cfg.is_object() && cfg.as_object().contains("name") && cfg.as_object().at("name").is_string())
      name = std::string(cfg.as_object().at("name").as_string());
  }
  if (!name.empty() && name != "float32")
    throw Error(where + ": dtype '" + name + "' is not supported; lamina computes in float32");
}

}  // namespace

WeightLimit& weight_limit() {
  thread_local WeightLimit limit;
  return limit;
}

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
  boost::json::object c{{"name", name_}, {"trainable", trainable_}, {"dtype", "float32"}};
  boost::system::error_code ec;
  boost::json::value own = boost::json::parse(plugin_->table.get_config(instance_), ec);
  if (!ec && own.is_object())
    for (auto& [k, v] : own.as_object()) c[k] = v;
  return c;
}

Tensor Layer::call(const Tensor& input, bool training, uint64_t seed) const {
  std::vector<lamina_tensor> w;
  for (const Tensor& t : weights_) w.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  lamina_call_context ctx{sizeof(lamina_call_context), training ? 1 : 0, seed};
  lamina_tensor out = nullptr;
  lamina_error error{};
  if (plugin_->table.call(instance_, &ctx, w.data(), int32_t(w.size()), reinterpret_cast<lamina_tensor>(input.impl()),
                          &out, &error) != LAMINA_OK)
    throw Error("layer '" + name_ + "' (" + class_name_ + "): " + error.message);
  if (!out) throw Error("layer '" + name_ + "' (" + class_name_ + ") returned no output");
  return Tensor(reinterpret_cast<TensorImpl*>(out), false);
}

// ------------------------------------------------------------------------------------------------
// Sequential


std::string Sequential::unique_name(const std::string& class_name) {
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
    check_dtype(spec.config, where);
    input_shape_ = *shape;
    if (auto* n = spec.config.if_contains("name"); n && n->is_string()) input_name_ = std::string(n->as_string());
    return *this;
  }
  check_dtype(spec.config, where);
  const LayerPlugin& plugin = Registry::get().layer(spec.class_name);

  auto layer = std::unique_ptr<Layer>(new Layer);
  layer->class_name_ = plugin.table.class_name;
  auto* name = spec.config.if_contains("name");
  layer->name_ = name && name->is_string() ? std::string(name->as_string()) : unique_name(layer->class_name_);
  for (auto& l : layers_)
    if (l->name_ == layer->name_)
      throw Error(where + ": the model already has a layer named '" + layer->name_ + "'; layer names must be unique");
  where = layer->class_name_ + " '" + layer->name_ + "'";
  if (auto* t = spec.config.if_contains("trainable"); t && t->is_bool()) layer->trainable_ = t->as_bool();

  if (layers_.empty()) {
    if (auto declared = declared_input_shape(spec.config, where)) input_shape_ = *declared;
    if (input_shape_.empty())
      throw Error(where + ": the first layer needs an input shape — give input_shape (e.g. {28, 28, 1}), input_dim, "
                          "or add an InputLayer first");
    layer->input_shape_ = input_shape_;
  } else {
    layer->input_shape_ = layers_.back()->output_shape_;
  }

  lamina_error error{};
  std::string config_text = boost::json::serialize(spec.config);
  layer->instance_ = plugin.table.create(config_text.c_str(), &error);
  if (!layer->instance_) throw Error(std::string(error.message[0] ? error.message : "invalid config") + " (in " + where + ")");
  layer->plugin_ = &plugin;

  lamina_layer_builder_impl builder;
  Layer* l = layer.get();
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
  int64_t out[LAMINA_MAX_DIMS];
  int32_t out_ndim = 0;
  NoGradGuard no_grad;
  if (plugin.table.build(layer->instance_, &builder, layer->input_shape_.data(), int32_t(layer->input_shape_.size()),
                         out, &out_ndim, &error) != LAMINA_OK)
    throw Error(std::string(error.message) + " (in " + where + ", input shape " +
                shape_to_string(layer->input_shape_) + ")");
  layer->output_shape_.assign(out, out + out_ndim);
  layers_.push_back(std::move(layer));
  return *this;
}

Layer& Sequential::layer(size_t index) {
  if (index >= layers_.size())
    throw Error("layer index " + std::to_string(index) + " is out of range; the model has " +
                std::to_string(layers_.size()) + " layers");
  return *layers_[index];
}
const Layer& Sequential::layer(size_t index) const { return const_cast<Sequential*>(this)->layer(index); }

Layer& Sequential::get_layer(const std::string& name) {
  std::string names;
  for (auto& l : layers_) {
    if (l->name() == name) return *l;
    names += (names.empty() ? "" : ", ") + l->name();
  }
  throw Error("no layer named '" + name + "'; the model's layers are: " + names);
}

const Shape& Sequential::output_shape() const {
  if (layers_.empty()) throw Error("the model has no layers yet");
  return layers_.back()->output_shape();
}

int64_t Sequential::count_params() const {
  int64_t n = 0;
  for (auto& l : layers_) n += l->count_params();
  return n;
}

Tensor Sequential::forward(const Tensor& x, bool training, size_t until) const {
  return forward(x, training, until, training ? rng()() : 0);
}

Tensor Sequential::forward(const Tensor& x, bool training, size_t until, uint64_t step_seed) const {
  Tensor h = x;
  for (size_t i = 0; i <= until && i < layers_.size(); ++i)
    h = layers_[i]->call(h, training, step_seed ^ (0x9E3779B97F4A7C15ull * (i + 1)));
  return h;
}

// Bytes as tf.keras 2.13+ prints a weight memory size: "397.54 KB", "0.00 Byte".
static std::string readable_memory_size(double bytes) {
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

// tf.keras 2.13-2.15's model.summary() for a Sequential model, character for character: 65
// columns, fields cut at 26 / 23 / 10 characters and continued on the next line, a blank line
// between layers, and the totals with their float32 memory size.
std::string Sequential::summary() const {
  std::ostringstream out;
  const size_t line_length = 65;
  const size_t positions[] = {29, 55, 65};
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
  print_row({"Layer (type)", "Output Shape", "Param #"});
  out << std::string(line_length, '=') << "\n";
  int64_t total = 0, trainable = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = *layers_[i];
    std::string shape = "(None";
    for (int64_t d : l.output_shape()) shape += ", " + std::to_string(d);
    shape += ")";
    print_row({l.name() + " (" + l.class_name() + ")", shape, std::to_string(l.count_params())});
    if (i + 1 < layers_.size()) out << std::string(line_length, ' ') << "\n";
    total += l.count_params();
    for (size_t k = 0; k < l.weights_.size(); ++k)
      if (l.weight_trainable_[k]) trainable += l.weights_[k].size();
  }
  out << std::string(line_length, '=') << "\n";
  out << "Total params: " << total << " (" << readable_memory_size(4.0 * double(total)) << ")\n";
  out << "Trainable params: " << trainable << " (" << readable_memory_size(4.0 * double(trainable)) << ")\n";
  out << "Non-trainable params: " << total - trainable << " ("
      << readable_memory_size(4.0 * double(total - trainable)) << ")\n";
  out << std::string(line_length, '_') << "\n";
  return out.str();
}

boost::json::object Sequential::get_config() const {
  boost::json::array layers;
  boost::json::array batch_shape{nullptr};
  for (int64_t d : input_shape_) batch_shape.push_back(d);
  std::string first = !input_name_.empty() ? input_name_ : layers_.empty() ? "input" : layers_.front()->name() + "_input";
  layers.push_back(boost::json::object{
      {"class_name", "InputLayer"},
      {"config",
       {{"batch_input_shape", batch_shape}, {"dtype", "float32"}, {"sparse", false}, {"ragged", false}, {"name", first}}}});
  for (auto& l : layers_) {
    boost::json::object c = l->get_config();
    layers.push_back(boost::json::object{{"class_name", l->class_name()}, {"config", c}});
  }
  return {{"name", name_}, {"layers", layers}};
}

std::string Sequential::to_json() const {
  boost::json::object o{{"class_name", "Sequential"},
                        {"config", get_config()},
                        {"keras_version", "2.14.0"},
                        {"backend", "tensorflow"}};
  return boost::json::serialize(o);
}

Sequential Sequential::from_config(const boost::json::value& model_config) {
  const boost::json::value* config = &model_config;
  if (model_config.is_object() && model_config.as_object().contains("class_name")) {
    const auto& o = model_config.as_object();
    if (!o.at("class_name").is_string())
      throw Error("model JSON: class_name must be a string, not " +
                  boost::json::serialize(o.at("class_name")).substr(0, 60));
    std::string cls(o.at("class_name").as_string());
    if (cls != "Sequential")
      throw Error("model class '" + cls + "' is not supported; lamina builds Sequential models");
    if (!o.contains("config")) throw Error("model JSON has no 'config'");
    config = &o.at("config");
  }
  const boost::json::array* layers = nullptr;
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
  if (build_shape) model.input_shape_ = *build_shape;
  size_t index = 0;
  for (const auto& entry : *layers) {
    ++index;
    if (!entry.is_object() || !entry.as_object().contains("class_name") || !entry.as_object().at("class_name").is_string())
      throw Error("model JSON: layer #" + std::to_string(index) + " has no class_name");
    const auto& e = entry.as_object();
    LayerSpec spec{std::string(e.at("class_name").as_string()), {}};
    if (auto* c = e.if_contains("config"); c && c->is_object()) spec.config = c->as_object();
    if (lower(spec.class_name) == "inputlayer" && !model.layers_.empty()) continue;
    model.add(spec);
  }
  return model;
}

Sequential model_from_json(const std::string& json_text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json_text, ec);
  if (ec) throw Error("model JSON is not valid JSON: " + ec.message());
  return Sequential::from_config(v);
}

}  // namespace lamina
