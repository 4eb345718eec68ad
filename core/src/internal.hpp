// Core internals shared by the core's sources; not installed, not seen by plugins.
#pragma once

#include <lamina/backend.hpp>
#include <lamina/lamina_plugin.h>
#include <lamina/model.hpp>
#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

// What add_weight() reaches during a layer's build().
struct lamina_layer_builder_impl {
  std::function<void(const std::string& name, const lamina::Shape& shape, const std::string& initializer,
                     bool trainable)>
      add;
};

namespace lamina {

// Runs `body`, turning an exception into LAMINA_ERROR plus its message (for host-table calls).
template <class Body> lamina_status sdk_guard(lamina_error* error, Body&& body) noexcept {
  auto write = [&](const char* m) {
    if (!error) return;
    std::strncpy(error->message, m, sizeof(error->message) - 1);
    error->message[sizeof(error->message) - 1] = '\0';
  };
  try {
    body();
    return LAMINA_OK;
  } catch (const std::exception& e) {
    write(e.what());
  } catch (...) {
    write("unknown error");
  }
  return LAMINA_ERROR;
}

struct BackendEntry;
struct PluginRecord;

// Memory owned by one backend (or by the core's host allocator when `backend` is null).
struct Buffer {
  BackendEntry* backend = nullptr;
  void* handle = nullptr;
  size_t bytes = 0;
  ~Buffer();
};

struct Node;

struct TensorImpl {
  std::atomic<int> refs{1};
  Shape shape;
  std::shared_ptr<Buffer> buffer;
  size_t offset = 0;  // bytes
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // the op that produced this tensor, while recording
  int output_index = 0;
};

// A recorded op application, for the backward pass.
struct OpDef;
struct Node {
  const OpDef* op = nullptr;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;  // detached views (no grad_fn), to avoid reference cycles
  Attributes attrs;
  uint64_t sequence = 0;  // creation order, for a topological order of the backward pass
};

// Gradient rule: given the node and the gradients of its outputs, the gradients of its inputs
// (undefined where an input gets none).
using BackwardFn = std::function<std::vector<Tensor>(const Node&, const std::vector<Tensor>&)>;

struct OpDef {
  std::string name;
  int id = 0;
  bool has_kernel = true;  // false: handled by the core (reshape)
  // Output shapes from input shapes and attributes (attributes may be completed, e.g. defaults).
  std::function<std::vector<Shape>(const std::vector<Shape>&, Attributes&)> infer;
  BackwardFn backward;           // empty: not differentiable
  bool shape_only_inputs = false;  // inputs only give the output shape (fill, dropout_mask)
};
const OpDef* find_op(const std::string& name);
const std::vector<const OpDef*>& all_ops();

// A registered backend: the plugin's table plus kernels indexed by op id.
struct BackendEntry {
  lamina_backend table{};
  std::string name;
  std::vector<lamina_kernel_fn> kernels;  // by OpDef::id, null where unsupported
  PluginRecord* plugin = nullptr;
  bool supports(const OpDef& op) const { return size_t(op.id) < kernels.size() && kernels[size_t(op.id)]; }
};

struct LayerPlugin {
  lamina_layer_class table{};
  PluginRecord* plugin = nullptr;
};
struct OptimizerPlugin {
  lamina_optimizer_class table{};
  PluginRecord* plugin = nullptr;
};

// The plugin registry: discovery, loading, lookup. One per process.
class Registry {
 public:
  static Registry& get();
  BackendEntry& active_backend();
  void set_backend(const std::string& name);
  std::string active_backend_name();
  std::vector<BackendEntry*> usable_backends();  // best first
  const LayerPlugin& layer(const std::string& class_name);
  const OptimizerPlugin& optimizer(const std::string& class_name);
  void add_path(const std::string& folder);
  std::vector<std::string> search_path();
  std::vector<PluginInfo> list();

  // used by the host table during lamina_plugin_init
  void register_backend(const lamina_backend& table);
  void register_layer(const lamina_layer_class& table);
  void register_optimizer(const lamina_optimizer_class& table);

  struct Impl;
  ~Registry();

 private:
  Registry();
  std::unique_ptr<Impl> impl_;
};

const lamina_host* host_table();

// Host memory owned by the core (data sets, batches).
std::shared_ptr<Buffer> allocate(BackendEntry* backend, size_t bytes);
Tensor make_tensor(const Shape& shape, BackendEntry* backend);  // uninitialised
// `t` usable by `backend`'s kernels: itself if its memory is reachable, else a copy.
Tensor on_backend(const Tensor& t, BackendEntry& backend);
lamina_view view_of(const Tensor& t);
Tensor detached(const Tensor& t);

// The process-wide random source (weights, shuffling, dropout seeds).
std::mt19937_64& rng();
// Uniform in [0, 1) and standard normal, from raw 64-bit draws: identical on every platform.
double uniform01(std::mt19937_64& g);
double normal01(std::mt19937_64& g);

// Fills `shape` per a Keras initializer (a name or a {class_name, config} object).
Tensor initialize(const boost::json::value& initializer, const Shape& shape, const std::string& where);

std::string lower(std::string s);

}  // namespace lamina
