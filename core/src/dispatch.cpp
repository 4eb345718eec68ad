// Running ops (dispatch.hpp). Backends only see kernel contracts (docs/ops.md); broadcasting, axes
// and autograd live in the core.
//
// run_op is on the path of every step of every model, so it avoids per-call heap work where it
// can: shapes are read from the tensors, attributes are handed to kernels from a stack array, and
// views are built in place.
#include "dispatch.hpp"

#include "attributes.hpp"
#include "autograd.hpp"
#include "backend_entry.hpp"
#include "launch_recorder.hpp"
#include "plugins.hpp"
#include "profiler.hpp"
#include "tensor_impl.hpp"

#include <lamina/error.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lamina {

namespace {

// Views for a kernel call; ops have few operands, so they live on the stack.
class Views {
 public:
  explicit Views(size_t n) {
    data_ = small_.data();
    if (n > small_.size()) {
      big_.resize(n);
      data_ = big_.data();
    }
  }
  lamina_view& operator[](size_t i) { return data_[i]; }
  const lamina_view* data() const { return data_; }

 private:
  std::array<lamina_view, 6> small_;
  std::vector<lamina_view> big_;
  lamina_view* data_;
};

// Calls `backend`'s kernel for `op`, timing it under LAMINA_PROFILE.
void call_kernel(const OpDef& op, BackendEntry& backend, const Views& in, size_t n_in, const Views& out,
                 size_t n_out, const lamina_attrs* attrs, std::span<const Tensor> given) {
  const bool timed = profiling();
  auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  ErrorSlot error;
  if (backend.kernels[size_t(op.id)](backend.table.self, in.data(), int32_t(n_in), out.data(), int32_t(n_out),
                                     attrs, &error) != LAMINA_OK)
    throw Error(op_context(op.name, ShapeList(given)) + " failed on backend '" + backend.name +
                "': " + error.message);
  if (timed)
    profile_record(backend.name + " " + op.name,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// Runs a kernel on freshly allocated outputs.
std::vector<Tensor> launch(const OpDef& op, BackendEntry& backend, const std::vector<Tensor>& given,
                           std::vector<Shape>& out_shapes, const Attributes& attrs) {
  std::vector<Tensor> outputs;
  outputs.reserve(out_shapes.size());
  bool empty = false;
  for (Shape& s : out_shapes) {
    empty |= shape_size(s) == 0;
    outputs.push_back(make_tensor(std::move(s), &backend));
  }
  if (empty) return outputs;
  size_t n_in = op.shape_only_inputs ? 0 : given.size();
  Views in(n_in), out(outputs.size());
  std::vector<Tensor> moved;  // copies of inputs from another backend's memory, alive for the call
  for (size_t i = 0; i < n_in; ++i) {
    const Tensor& t = given[i];
    if (reachable(t, backend)) {
      in[i] = view_of(t);
    } else {
      moved.push_back(on_backend(t, backend));
      in[i] = view_of(moved.back());
    }
    // Broadcasting kernels see every input at the output's rank.
    if (op.broadcasts) {
      lamina_view& v = in[i];
      int32_t rank = int32_t(outputs[0].shape().size());
      if (v.ndim < rank) {
        int32_t lead = rank - v.ndim;
        for (int32_t d = v.ndim - 1; d >= 0; --d) v.shape[d + lead] = v.shape[d];
        for (int32_t d = 0; d < lead; ++d) v.shape[d] = 1;
        v.ndim = rank;
      }
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) out[i] = view_of(outputs[i]);
  const bool keepdims = op.kernel_keeps_rank;
  if (keepdims) {  // y at x's rank, each summed axis of size 1: what the kernel contract says
    lamina_view& y = out[0];
    const Shape& x = given[0].shape();
    y.ndim = int32_t(x.size());
    for (size_t d = 0; d < x.size(); ++d) y.shape[d] = x[d];
    for (int64_t axis : attrs.get_ints("axes", {})) y.shape[axis < 0 ? axis + int64_t(x.size()) : axis] = 1;
  }
  CAttrs c(attrs, keepdims ? "keepdims" : nullptr, 1);
  call_kernel(op, backend, in, n_in, out, outputs.size(), c.view(), given);
  if (LaunchRecorder* r = active_recorder()) {
    if (moved.empty())
      r->launched(op, backend, in.data(), n_in, out.data(), outputs.size(), attrs,
                  keepdims ? "keepdims" : nullptr, 1, given, outputs);
    else
      r->spoil();  // an input was copied from another backend
  }
  return outputs;
}

// In-place updates: the outputs are inputs 0, 2, 3, ... themselves.
std::vector<Tensor> run_update(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs) {
  if (grad_enabled())
    for (const Tensor& t : given)
      if (needs_grad(t))
        throw Error("op '" + op.name +
                    "' updates its inputs in place and cannot be recorded for autograd; run it under "
                    "NoGradGuard, as optimizers are");
  if (LaunchRecorder* r = active_recorder()) r->spoil();  // in place: not repeatable
  BackendEntry& backend = Registry::get().active_backend();
  std::vector<Tensor> result{given[0]};
  for (size_t i = 2; i < given.size(); ++i) result.push_back(given[i]);
  if (!backend.supports(op)) {
    if (!op.fallback) throw Error("backend '" + backend.name + "' has no kernel for op '" + op.name + "'");
    op.fallback(given, attrs);
    return result;
  }
  // Parameters in another backend's memory are updated through a copy, then written back.
  bool copied = false;
  for (const Tensor& t : given) copied |= !reachable(t, backend);
  std::vector<Tensor> work;
  if (copied) {
    work = given;
    for (Tensor& t : work)
      if (!reachable(t, backend)) t = on_backend(t, backend);
  }
  const std::vector<Tensor>& operands = copied ? work : given;
  Views in(operands.size()), out(result.size());
  for (size_t i = 0; i < operands.size(); ++i) in[i] = view_of(operands[i]);
  out[0] = in[0];
  for (size_t i = 2; i < operands.size(); ++i) out[i - 1] = in[i];
  if (shape_size(given[0].shape()) > 0) {
    CAttrs c(attrs);
    call_kernel(op, backend, in, operands.size(), out, result.size(), c.view(), given);
  }
  if (copied)
    for (size_t i = 0; i < given.size(); ++i)
      if (i != 1 && work[i].impl() != given[i].impl()) assign(given[i], work[i]);
  return result;
}

}  // namespace

std::vector<Tensor> run_op(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs) {
  for (const Tensor& t : given)
    if (!t.defined()) throw Error("op '" + op.name + "': an input tensor is undefined");
  std::vector<Shape> out_shapes = op.infer(ShapeList(given), attrs);
  if (op.in_place_update) return run_update(op, given, attrs);

  std::vector<Tensor> outputs;
  if (!op.has_kernel) {  // reshape: a view on the same buffer
    auto* impl = new TensorImpl;
    impl->shape = std::move(out_shapes[0]);
    impl->buffer = given[0].impl()->buffer;
    impl->offset = given[0].impl()->offset;
    outputs.push_back(Tensor(impl, false));
  } else {
    BackendEntry& backend = Registry::get().active_backend();
    if (backend.supports(op)) {
      outputs = launch(op, backend, given, out_shapes, attrs);
    } else if (op.fallback) {
      NoGradGuard composed;  // recorded below as the fused op, with its own gradient rule
      outputs = op.fallback(given, attrs);
    } else {
      throw Error("backend '" + backend.name + "' has no kernel for op '" + op.name + "'");
    }
  }

  if (op.gives_probabilities) outputs[0].impl()->logits = given[0];
  if (op.backward && grad_enabled()) record_node(op, given, attrs, outputs);
  return outputs;
}

std::vector<Tensor> run_op(const std::string& name, const std::vector<Tensor>& given,
                           const Attributes& attrs) {
  return run_op(need_op(name), given, attrs);
}

namespace {

// A plugin's call may pass only the attributes its op declares: a misspelt or unknown one would
// otherwise be ignored without a word.
void check_attributes(const OpDef& op, const Attributes& attrs) {
  if (!op.attributes) return;
  for (const auto& item : attrs) {
    if (std::find(op.attributes->begin(), op.attributes->end(), item.name) != op.attributes->end()) continue;
    std::string known;
    for (const std::string& a : *op.attributes) known += (known.empty() ? "" : ", ") + a;
    throw Error("op '" + op.name + "' has no attribute '" + item.name + "' (" +
                (known.empty() ? std::string("it takes none") : "its attributes: " + known) + ")");
  }
}

}  // namespace

// Plugins name their ops with string literals, the same pointer on every call: a small per-thread
// table from name pointers to ops skips hashing the name. A hit is confirmed by comparing the text,
// so a buffer reused for another name is still looked up correctly.
const OpDef& named_op(const char* name) {
  struct Slot {
    const char* name = nullptr;
    const OpDef* op = nullptr;
  };
  thread_local std::array<Slot, 64> slots;
  Slot& slot = slots[(reinterpret_cast<uintptr_t>(name) >> 4) % slots.size()];
  if (!(slot.name == name && slot.op && std::strcmp(name, slot.op->name.c_str()) == 0))
    slot = {name, &need_op(std::string_view(name))};
  return *slot.op;
}

std::vector<Tensor> run_named_op(const char* name, const std::vector<Tensor>& given,
                                 const Attributes& attrs) {
  const OpDef& op = named_op(name);
  check_attributes(op, attrs);
  return run_op(op, given, attrs);
}

bool run_plugin_update(const OpDef& op, std::span<const Tensor> given, const lamina_attrs* attrs) {
  if (!op.in_place_update || given.size() < op.update_min_inputs || given.size() > op.update_max_inputs)
    return false;
  // Attributes: each one declared, given once, of a type the kernels read.
  const int32_t n_attrs = attrs ? attrs->count : 0;
  if (n_attrs > 0 && (!attrs->items || !op.attributes)) return false;
  // Names compared as string views: lengths first, the text only where they match.
  constexpr int32_t kMaxAttributes = 16;
  if (n_attrs > kMaxAttributes) return false;
  size_t lengths[kMaxAttributes];  // of the names so far; not cleared, this runs on every update
  for (int32_t i = 0; i < n_attrs; ++i) {
    const lamina_attr& a = attrs->items[i];
    if (!a.name || (a.type != LAMINA_ATTR_INT && a.type != LAMINA_ATTR_FLOAT && a.type != LAMINA_ATTR_STRING))
      return false;
    const std::string_view name(a.name);
    if (std::find(op.attributes->begin(), op.attributes->end(), name) == op.attributes->end()) return false;
    for (int32_t j = 0; j < i; ++j)
      if (lengths[j] == name.size() && std::memcmp(attrs->items[j].name, a.name, name.size()) == 0)
        return false;
    lengths[i] = name.size();
  }
  BackendEntry& backend = Registry::get().active_backend();
  if (!backend.supports(op)) return false;
  const bool recording_grads = grad_enabled();
  for (const Tensor& t : given)
    if (!t.defined() || t.shape() != given[0].shape() || !reachable(t, backend) ||
        (recording_grads && needs_grad(t)))
      return false;
  if (LaunchRecorder* r = active_recorder()) r->spoil();  // in place: not repeatable (as run_update)
  if (shape_size(given[0].shape()) == 0) return true;
  Views in(given.size()), out(given.size() - 1);
  for (size_t i = 0; i < given.size(); ++i) in[i] = view_of(given[i]);
  out[0] = in[0];
  for (size_t i = 2; i < given.size(); ++i) out[i - 1] = in[i];
  const lamina_attrs none{0, nullptr};
  call_kernel(op, backend, in, given.size(), out, given.size() - 1, attrs ? attrs : &none, given);
  return true;
}

// An overwrite by the backend's copy kernel is a launch like any other: a step recording keeps it,
// so that a layer which updates its state in training (BatchNormalization's moving statistics)
// updates it on replayed steps too. An overwrite through the host, or of a value that first had to
// move between backends, is not repeatable.
void assign(const Tensor& target, const Tensor& value) {
  LaunchRecorder* recorder = active_recorder();
  if (target.shape() != value.shape())
    throw Error("assign: value of shape " + shape_to_string(value.shape()) +
                " does not fit a tensor of shape " + shape_to_string(target.shape()));
  Buffer& b = *target.impl()->buffer;
  BackendEntry& backend = b.backend ? *b.backend : Registry::get().active_backend();
  const OpDef& copy = LAMINA_OP("copy");
  if (!backend.supports(copy) || (!b.backend && !backend.table.host_memory)) {
    if (recorder) recorder->spoil();
    std::vector<float> v = value.to_vector();
    if (!b.backend) {
      std::memcpy(const_cast<Tensor&>(target).host_data(), v.data(), v.size() * sizeof(float));
      return;
    }
    ErrorSlot error;
    if (backend.table.copy_in(backend.table.self, b.handle, target.impl()->offset, v.data(),
                              v.size() * sizeof(float), &error) != LAMINA_OK)
      throw Error(std::string("assign failed: ") + error.message);
    return;
  }
  Tensor src = on_backend(value, backend);
  lamina_view in = view_of(src), out = view_of(target);
  lamina_attrs none{0, nullptr};
  ErrorSlot error;
  if (backend.kernels[size_t(copy.id)](backend.table.self, &in, 1, &out, 1, &none, &error) != LAMINA_OK)
    throw Error(std::string("assign failed on backend '") + backend.name + "': " + error.message);
  if (!recorder) return;
  if (src.impl() != value.impl()) {
    recorder->spoil();
    return;
  }
  recorder->launched(copy, backend, &in, 1, &out, 1, Attributes(), nullptr, 0, {src}, {target});
}

}  // namespace lamina
