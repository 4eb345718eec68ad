// Core internals shared by the core's sources; not installed, not seen by plugins.
#pragma once

#include <lamina/lamina_plugin.h>
#include <lamina/backend.hpp>
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
template <class Body>
lamina_status sdk_guard(lamina_error* error, Body&& body) noexcept {
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
  // The input of the op that made this tensor when that op declares its output probabilities of it
  // (softmax): cross-entropy reads these logits instead, with or without autograd.
  Tensor logits;
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

// The shapes of an op's inputs, read from the tensors themselves so that shape inference copies
// nothing on the per-op path.
class ShapeList {
 public:
  explicit ShapeList(const std::vector<Tensor>& tensors) : tensors_(&tensors) {}
  size_t size() const { return tensors_->size(); }
  const Shape& operator[](size_t i) const { return (*tensors_)[i].shape(); }
  std::vector<Shape> to_vector() const {
    std::vector<Shape> out;
    for (const Tensor& t : *tensors_) out.push_back(t.shape());
    return out;
  }

 private:
  const std::vector<Tensor>* tensors_;
};

// A composition of other ops computing the same as a fused op, for backends without its kernel.
using FallbackFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Attributes&)>;

struct OpDef {
  std::string name;
  int id = 0;
  bool has_kernel = true;  // false: handled by the core (reshape)
  // Output shapes from input shapes and attributes.
  std::function<std::vector<Shape>(const ShapeList&, const Attributes&)> infer;
  BackwardFn backward;             // empty: not differentiable
  bool shape_only_inputs = false;  // inputs only give the output shape (fill, dropout_mask)
  bool broadcasts = false;         // add/sub/mul/div: kernels see inputs expanded to the output's rank
  bool kernel_keeps_rank = false;  // reductions: kernels see the output at input 0's rank (keepdims)
  // softmax: the output is a probability distribution over input 0, the logits, which the output
  // keeps (TensorImpl::logits) so that cross-entropy is computed from them.
  bool gives_probabilities = false;
  // A gradient op (relu_backward, conv2d_backward_data, ...): the op whose gradient rule calls it.
  // Gradient ops are the core's own; the SDK wraps every other op.
  std::string gradient_of;
  // Optimizer updates: inputs (param, grad, slots...) and outputs (param, slots...) are the same
  // tensors, written in place; nothing is allocated and nothing is recorded for autograd.
  bool in_place_update = false;
  // Fused ops: the same computation from basic ops, run where the backend has no kernel for this
  // op, so a backend written before the op existed keeps working.
  FallbackFn fallback;
  // Plugin ops (lamina_op_class): kernels by backend name, attached to each backend of that name.
  std::vector<std::pair<std::string, lamina_kernel_fn>> plugin_kernels;
};
const OpDef* find_op(const std::string& name);
// Adds a plugin's op to the op set (lamina_host.register_op); its gradient is that of its
// composition. Throws for a name already taken or an incomplete table.
const OpDef& define_plugin_op(const lamina_op_class& op);
const std::vector<const OpDef*>& all_ops();
// run_op for a name given as a C string by a plugin (looked up through a per-thread cache).
std::vector<Tensor> run_named_op(const char* name, const std::vector<Tensor>& given, const Attributes& attrs);
// Writes `a` (plus one integer attribute `extra_name`, when given, which wins over one of that name)
// as the C ABI carries attributes into out[0..a.size()]; the names and texts point into `a`.
// Returns the count written.
size_t to_c_attrs(const Attributes& a, const char* extra_name, int64_t extra_value, lamina_attr* out);
// Releases the buffers the allocator keeps for reuse (before backends shut down).
void release_cached_buffers();

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
  void register_communicator(const lamina_communicator& table);
  // The registered communicator `name`, loading communicator plugins; nullptr with `why` if none.
  const lamina_communicator* communicator(const std::string& name, std::string& why);
  void register_op(const lamina_op_class& table);

  struct Impl;
  ~Registry();

 private:
  Registry();
  std::unique_ptr<Impl> impl_;
};

const lamina_host* host_table();

// LAMINA_PROFILE: adds `seconds` to the entry `name` of the profile printed at exit.
bool profiling();
void profile_record(const std::string& name, double seconds);

namespace distributed {
// The communicator fit() and evaluate() use on this thread: nullptr in a job of one, or inside a
// LocalScope.
const lamina_communicator* active_communicator();
// A collective on `c`, timed under LAMINA_PROFILE; failures throw naming `what` and the rank.
void allreduce(const lamina_communicator& c, float* data, size_t count, const char* what);
void broadcast(const lamina_communicator& c, float* data, size_t count, int root, const char* what);
}  // namespace distributed

// `t` in host memory: itself, or a copy from its device.
Tensor to_host(const Tensor& t);

// Runs `body` in a forked child process and waits for it, at most `timeout_seconds`. The child ends
// with _exit(0) when `body` returns or throws; anything else — a signal, exit() with another status
// inside `body`, a sanitizer's report — is what the caller looks for. `unknown` when no child could be
// run or waited for: the caller goes on as without the check.
struct ChildOutcome {
  enum Verdict { unknown, ok, signalled, exited, timed_out } verdict = unknown;
  int code = 0;             // the signal or the exit status
  std::string description;  // "signal 11, Segmentation fault", "exit status 3"
};
ChildOutcome run_in_child(const std::function<void()>& body, double timeout_seconds);

// A plugin manifest (<target>.json beside the library) as discovery reads it. Throws Error saying
// what is malformed; `library` is as written (relative to the manifest's folder).
struct PluginManifest {
  std::string name, kind, version, library;
  std::vector<std::string> provides;
};
PluginManifest parse_plugin_manifest(const std::string& text);

// Host memory owned by the core (data sets, batches).
std::shared_ptr<Buffer> allocate(BackendEntry* backend, size_t bytes);
Tensor make_tensor(Shape shape, BackendEntry* backend);  // uninitialised
// Whether `backend`'s kernels can use `t`'s memory directly.
bool reachable(const Tensor& t, const BackendEntry& backend);
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

// The most elements one layer weight may have while layers are built (per thread). Loading a model
// file lowers it to the largest weight the file stores, so a hostile config cannot force a huge
// allocation; `source` says why, for the message.
struct WeightLimit {
  int64_t elements = int64_t(1) << 40;
  std::string source = "lamina's limit";
};
WeightLimit& weight_limit();

}  // namespace lamina
