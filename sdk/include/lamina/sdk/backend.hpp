// What every compute backend needs around its kernels: checks of the views a kernel receives, with
// messages that name the tensors and shapes; the wrapper that runs a kernel body and names the op in
// its errors; the kernel table and the backend's registration; plain host memory for backends that
// compute on the host; and the arguments of the ops whose checks are the same on every backend.
//
// A backend describes itself with a kernel policy (derive from KernelPolicy):
//   static constexpr const char* name;   errors read "<name> backend, op '<op>': ..."
//   using State = ...;                   what the table's `self` points to (NoState: nothing)
//   static void run(State&, const KernelArgs&, Body&&);
//                                        optional: what runs around every kernel body (a lock,
//                                        checks the device needs, a wait)
// and defines its kernels with LAMINA_BACKEND_KERNEL(Policy, function, "op"), which also enters
// them in the policy's kernel table; register_backend<Policy> hands that table to the core.
#pragma once

#include <lamina/sdk/dropout.hpp>
#include <lamina/sdk/plugin.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

namespace lamina::sdk {

// ------------------------------------------------------------------------------------------------
// Shapes and views

// "[2, 28, 28, 1]"
inline std::string shape_string(const lamina_view& v) {
  std::string s = "[";
  for (int32_t i = 0; i < v.ndim; ++i) s += (i ? ", " : "") + std::to_string(v.shape[i]);
  return s + "]";
}

// "(x, w)"
inline std::string name_list(std::initializer_list<const char*> names) {
  std::string s;
  for (const char* n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  return "(" + s + ")";
}

// "inputs [2, 3] [3], outputs [2, 3]": every view of a call, for messages about the call as a whole.
inline std::string describe_call(const KernelArgs& args) {
  std::string s = "inputs";
  for (int32_t i = 0; i < args.n_inputs; ++i) {
    s += ' ';
    s += shape_string(args.inputs[i]);
  }
  s += ", outputs";
  for (int32_t i = 0; i < args.n_outputs; ++i) {
    s += ' ';
    s += shape_string(args.outputs[i]);
  }
  return s;
}

// The checks every kernel runs on every view before touching memory: a valid rank, float32, no
// negative dimension, and data behind any non-empty view. They cost O(rank).
inline bool view_ok(const lamina_view& v) {
  if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS || v.dtype != LAMINA_DTYPE_FLOAT32) return false;
  for (int32_t i = 0; i < v.ndim; ++i)
    if (v.shape[i] < 0) return false;
  return v.data || view_size(v) == 0;
}
// view_ok, throwing what is wrong with the view called `name`.
inline void check_view(const lamina_view& v, const char* name) {
  if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS)
    throw Error(std::string(name) + " has invalid rank " + std::to_string(v.ndim));
  if (v.dtype != LAMINA_DTYPE_FLOAT32)
    throw Error(std::string(name) + " has dtype " + std::to_string(v.dtype) + ", only float32 is supported");
  for (int32_t i = 0; i < v.ndim; ++i)
    if (v.shape[i] < 0) throw Error(std::string(name) + " has a negative dimension " + shape_string(v));
  if (!v.data && view_size(v) > 0) throw Error(std::string(name) + " has no data");
}

// Checks the number of inputs and outputs (named for the message) and every view.
inline void expect_arity(const KernelArgs& args, std::initializer_list<const char*> inputs,
                         std::initializer_list<const char*> outputs) {
  if (args.n_inputs != int32_t(inputs.size()) || args.n_outputs != int32_t(outputs.size()))
    throw Error("takes inputs " + name_list(inputs) + " and outputs " + name_list(outputs) + ", got " +
                std::to_string(args.n_inputs) + " input(s) and " + std::to_string(args.n_outputs) +
                " output(s)");
  const char* const* in_name = inputs.begin();
  for (int32_t i = 0; i < args.n_inputs; ++i) check_view(args.inputs[i], in_name[i]);
  const char* const* out_name = outputs.begin();
  for (int32_t i = 0; i < args.n_outputs; ++i) check_view(args.outputs[i], out_name[i]);
}

// Checks the counts of views, known by position ("input 0"), and every view. `extra_inputs_ok` lets
// a generator (fill, dropout_mask) accept inputs it does not read, such as the tensor that gave the
// output's shape.
inline void expect_views(const KernelArgs& args, int n_inputs, int n_outputs, bool extra_inputs_ok = false) {
  const bool inputs_ok = extra_inputs_ok ? args.n_inputs >= n_inputs : args.n_inputs == n_inputs;
  if (!inputs_ok || args.n_outputs != n_outputs)
    throw Error("expects " + std::to_string(n_inputs) + " input(s) and " + std::to_string(n_outputs) +
                " output(s), got " + std::to_string(args.n_inputs) + " and " +
                std::to_string(args.n_outputs));
  // The name is spelt out only for the message: kernels run this on every call.
  for (int32_t i = 0; i < args.n_inputs; ++i)
    if (!view_ok(args.inputs[i])) check_view(args.inputs[i], ("input " + std::to_string(i)).c_str());
  for (int32_t i = 0; i < args.n_outputs; ++i)
    if (!view_ok(args.outputs[i])) check_view(args.outputs[i], ("output " + std::to_string(i)).c_str());
}

// `layout` names the axes for the message, e.g. "(N,H,W,C)".
inline void expect_rank(const lamina_view& v, const char* name, int32_t rank, const char* layout) {
  if (v.ndim != rank)
    throw Error(std::string(name) + " has shape " + shape_string(v) + ", expected rank " +
                std::to_string(rank) + " " + layout);
}

inline bool same_shape(const lamina_view& a, const lamina_view& b) {
  if (a.ndim != b.ndim) return false;
  for (int32_t i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  return true;
}

inline void expect_same_shape(const lamina_view& a, const char* a_name, const lamina_view& b,
                              const char* b_name) {
  if (!same_shape(a, b))
    throw Error(std::string(a_name) + " has shape " + shape_string(a) + " but " + b_name + " has shape " +
                shape_string(b) + "; they must match");
}

// For kernels that treat their views as flat arrays: only the element counts must agree.
inline void expect_same_size(const lamina_view& a, const char* a_name, const lamina_view& b,
                             const char* b_name) {
  if (view_size(a) != view_size(b))
    throw Error(std::string(a_name) + " " + shape_string(a) + " and " + b_name + " " + shape_string(b) +
                " hold different numbers of elements");
}

// A bias or its gradient: rank 1 with one value per `per` (e.g. "output channel"), `count` of them.
inline void expect_vector(const lamina_view& v, const char* name, int64_t count, const char* per) {
  if (v.ndim != 1 || v.shape[0] != count)
    throw Error(std::string(name) + " " + shape_string(v) + " must hold one value per " + per + " (" +
                std::to_string(count) + ")");
}

// The data of host-memory views (backends whose buffers are plain host memory).
inline const float* input(const KernelArgs& args, int32_t i) {
  return static_cast<const float*>(args.inputs[i].data);
}
inline float* output(const KernelArgs& args, int32_t i) {
  return host_data(args.outputs[i]);
}

// ------------------------------------------------------------------------------------------------
// Arguments whose checks every backend shares

// softmax and log_softmax: x (..., L) and y of x's shape, normalised along the last axis in `rows`
// rows of `length`. length 0 means there is nothing to compute.
struct Rows {
  int64_t rows = 0, length = 0;
};
inline Rows last_axis_rows(const lamina_view& x, const lamina_view& y) {
  expect_same_shape(x, "x", y, "y");
  if (x.ndim < 1) throw Error("x must have rank >= 1, got a scalar");
  Rows r;
  r.length = x.shape[x.ndim - 1];
  r.rows = r.length ? view_size(x) / r.length : 0;
  return r;
}

// Broadcasting binary ops: a, b and y have the same rank (the core expands ranks before calling),
// and each dimension of a and b is y's or 1.
inline void expect_broadcast_shapes(const lamina_view& a, const lamina_view& b, const lamina_view& y) {
  if (a.ndim != y.ndim || b.ndim != y.ndim)
    throw Error("a " + shape_string(a) + ", b " + shape_string(b) + " and y " + shape_string(y) +
                " must have the same rank (the core expands ranks before calling)");
  for (int32_t d = 0; d < y.ndim; ++d)
    if ((a.shape[d] != y.shape[d] && a.shape[d] != 1) || (b.shape[d] != y.shape[d] && b.shape[d] != 1))
      throw Error("cannot broadcast a " + shape_string(a) + " and b " + shape_string(b) + " to y " +
                  shape_string(y) + ": axis " + std::to_string(d) + " of a and b must be y's or 1");
}

// reduce_sum: y has x's rank; an axis where y is 1 and x is not is summed, the others match.
inline void expect_reduce_shapes(const lamina_view& x, const lamina_view& y) {
  if (x.ndim != y.ndim)
    throw Error("x " + shape_string(x) + " and y " + shape_string(y) +
                " must have the same rank (summed axes are kept as 1)");
  for (int32_t d = 0; d < x.ndim; ++d)
    if (y.shape[d] != x.shape[d] && y.shape[d] != 1)
      throw Error("cannot sum x " + shape_string(x) + " into y " + shape_string(y) + ": axis " +
                  std::to_string(d) + " of y must be x's or 1");
}

// The batch-normalization ops (batch_norm_train, batch_norm_train_backward, batch_norm_inference):
// x (..., C) seen as `rows` rows of `channels`, statistics per channel over the rows; every
// per-channel view (C,). Checks the arity and shapes and reads `epsilon`.
struct BatchNormArgs {
  int64_t rows = 0, channels = 0;
  double epsilon = 1e-3;
};
inline BatchNormArgs batch_norm_args(const KernelArgs& args, std::initializer_list<const char*> inputs,
                                     std::initializer_list<const char*> outputs) {
  expect_arity(args, inputs, outputs);
  const lamina_view& x = args.inputs[0];
  if (x.ndim < 2)
    throw Error("x " + shape_string(x) + " must have a batch axis and a channel axis (the last)");
  BatchNormArgs b;
  b.channels = x.shape[x.ndim - 1];
  b.rows = b.channels ? view_size(x) / b.channels : 0;
  b.epsilon = args.attrs.get_float("epsilon", 1e-3);
  auto check = [&](const lamina_view& v, const char* name) {
    if (v.ndim == x.ndim) {
      expect_same_shape(x, "x", v, name);
      return;
    }
    expect_vector(v, name, b.channels, "channel");
  };
  const char* const* in_name = inputs.begin();
  for (int32_t i = 1; i < args.n_inputs; ++i) check(args.inputs[i], in_name[i]);
  const char* const* out_name = outputs.begin();
  for (int32_t i = 0; i < args.n_outputs; ++i) check(args.outputs[i], out_name[i]);
  return b;
}

// dropout_mask: y any shape; the op takes no inputs, but callers may pass the tensor the mask is
// for, whose shape must be y's. Checks the views and reads `rate` and `seed` (both required).
// A generator (dropout_mask, random_normal) takes no inputs, or the tensor whose shape its one
// output y has.
inline void expect_generator_arity(const KernelArgs& args) {
  if (args.n_inputs == 1) {
    expect_arity(args, {"like"}, {"y"});
    expect_same_shape(args.inputs[0], "like", args.outputs[0], "y");
  } else {
    expect_arity(args, {}, {"y"});
  }
}

struct DropoutArgs {
  double rate = 0.0;
  uint64_t seed = 0;
  float keep = 0.0f;       // 1/(1-rate), the value of kept elements; 0 when rate is 1
  uint64_t threshold = 0;  // element i is kept when dropout_bits(seed, i) >= threshold
};
inline DropoutArgs dropout_args(const KernelArgs& args) {
  expect_generator_arity(args);
  args.attrs.need("rate");
  args.attrs.need("seed");
  DropoutArgs d;
  d.rate = args.attrs.get_float("rate", 0.0);
  if (!(d.rate >= 0.0 && d.rate <= 1.0)) throw Error("rate must be in [0, 1], got " + std::to_string(d.rate));
  d.seed = uint64_t(args.attrs.get_int("seed", 0));
  d.keep = d.rate < 1.0 ? float(1.0 / (1.0 - d.rate)) : 0.0f;  // with rate 1 the scale is never used
  d.threshold = dropout_threshold(d.rate);
  return d;
}

// random_normal: y any shape, y[i] = mean + stddev · n(seed, i); like dropout_mask it takes no
// inputs, or the tensor whose shape y has. Reads `mean`, `stddev` (≥ 0) and `seed` (all required).
struct RandomNormalArgs {
  double mean = 0.0, stddev = 1.0;
  uint64_t seed = 0;
};
inline RandomNormalArgs random_normal_args(const KernelArgs& args) {
  expect_generator_arity(args);
  args.attrs.need("mean");
  args.attrs.need("stddev");
  args.attrs.need("seed");
  RandomNormalArgs r;
  r.mean = args.attrs.get_float("mean", 0.0);
  r.stddev = args.attrs.get_float("stddev", 1.0);
  if (!(r.stddev >= 0.0)) throw Error("stddev must be >= 0, got " + std::to_string(r.stddev));
  r.seed = uint64_t(args.attrs.get_int("seed", 0));
  return r;
}

// Optimizer updates: (param, grad, slots...) → (param, slots...), all of one shape, for a slot count
// in [fewest, most]. Returns the slot count.
inline int expect_update(const KernelArgs& args, int fewest, int most) {
  const int slots = args.n_inputs - 2;
  if (slots < fewest || slots > most || args.n_outputs != slots + 1)
    throw Error("takes the parameter, its gradient and " + std::to_string(fewest) +
                (most > fewest ? " or " + std::to_string(most) : std::string()) +
                " slot(s), and returns the parameter and the slots; got " + std::to_string(args.n_inputs) +
                " input(s) and " + std::to_string(args.n_outputs) + " output(s)");
  for (int32_t i = 0; i < args.n_inputs; ++i) {
    check_view(args.inputs[i], i == 0 ? "param" : i == 1 ? "grad" : "slot");
    expect_same_shape(args.inputs[i], i == 1 ? "grad" : "slot", args.inputs[0], "param");
  }
  for (int32_t i = 0; i < args.n_outputs; ++i) {
    check_view(args.outputs[i], "output");
    expect_same_shape(args.outputs[i], "output", args.inputs[0], "param");
  }
  return slots;
}

// ------------------------------------------------------------------------------------------------
// Kernels

// The state of a backend that keeps none (its table's `self` is null).
struct NoState {};

// Defaults for a backend's kernel policy; see the top of this file.
struct KernelPolicy {
  using State = NoState;
  template <class S, class Body>
  static void run(S& /*state*/, const KernelArgs& /*args*/, Body&& body) {
    body();
  }
};

// The state a kernel's `backend` argument points to.
template <class Policy>
typename Policy::State& state_of(const KernelArgs& args) {
  using State = typename Policy::State;
  if constexpr (std::is_same_v<State, NoState>) {
    static NoState none;
    return none;
  } else {
    if (!args.backend) throw Error("kernel called without the backend's state");
    return *static_cast<State*>(args.backend);
  }
}

// Runs a kernel body inside the policy's run, turning any exception into LAMINA_ERROR with a
// message that names the backend and the op, so that an error surfacing from deep inside a model
// still says which kernel refused what.
template <class Policy, class Body>
lamina_status run_kernel(const char* op, const KernelArgs& args, lamina_error* error, Body&& body) noexcept {
  return guarded(error, [&] {
    try {
      auto& state = state_of<Policy>(args);
      Policy::run(state, args, [&] { body(state); });
    } catch (const std::exception& e) {
      throw Error(std::string(Policy::name) + " backend, op '" + op + "': " + e.what());
    }
  });
}

// The kernels a policy's backend has, entered by LAMINA_BACKEND_KERNEL as the library loads.
template <class Policy>
std::vector<lamina_kernel>& kernel_table() {
  static std::vector<lamina_kernel> table;
  return table;
}
template <class Policy>
struct KernelEntry {
  KernelEntry(const char* op, lamina_kernel_fn run) { kernel_table<Policy>().push_back({op, run}); }
};
// Enters a list of ready-made kernels (e.g. sdk::layout::host::kKernels) in a policy's table.
template <class Policy>
struct KernelEntries {
  template <size_t N>
  explicit KernelEntries(const lamina_kernel (&kernels)[N]) {
    for (const lamina_kernel& k : kernels) kernel_table<Policy>().push_back(k);
  }
};

// Registers a backend with the core: `table` gives the name (default: the policy's), the device,
// `self` and the memory functions; the kernels are the policy's kernel table. Two kernels for one
// op are refused.
template <class Policy>
void register_backend(const lamina_host* host, lamina_backend table) {
  const std::vector<lamina_kernel>& kernels = kernel_table<Policy>();
  for (size_t i = 0; i < kernels.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (std::strcmp(kernels[i].op, kernels[j].op) == 0)
        throw Error(std::string(Policy::name) + " backend: two kernels for op '" + kernels[i].op + "'");
  table.struct_size = sizeof(lamina_backend);
  if (!table.name) table.name = Policy::name;
  table.kernel_count = int32_t(kernels.size());
  table.kernels = kernels.data();
  ErrorSlot error;
  check(host->register_backend(host->self, &table, &error), error);
}

// A backend table with `self` and the buffer functions set; the caller adds the device.
inline lamina_backend backend_table(void* self, bool host_memory, decltype(lamina_backend::alloc) alloc,
                                    decltype(lamina_backend::release) release,
                                    decltype(lamina_backend::copy_in) copy_in,
                                    decltype(lamina_backend::copy_out) copy_out,
                                    decltype(lamina_backend::synchronize) synchronize) {
  lamina_backend t{};
  t.self = self;
  t.host_memory = host_memory ? 1 : 0;
  t.alloc = alloc;
  t.release = release;
  t.copy_in = copy_in;
  t.copy_out = copy_out;
  t.synchronize = synchronize;
  return t;
}

// ------------------------------------------------------------------------------------------------
// Plain host memory, 64-byte aligned (a cache line, an AVX-512 register), for backends that compute
// on the host: such buffers can be handed to any other host backend and back without copies.

struct HostMemory {
  static constexpr size_t kAlignment = 64;

  static void* alloc(void* /*self*/, size_t bytes, lamina_error* error) {
    // std::aligned_alloc wants a multiple of the alignment; an empty tensor still gets a distinct,
    // non-null buffer so that null can mean failure.
    if (bytes > SIZE_MAX - kAlignment) {
      write_error(error, "cannot allocate " + std::to_string(bytes) + " bytes");
      return nullptr;
    }
    const size_t rounded = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (!p)
      write_error(error, "out of host memory allocating " + std::to_string(bytes) + " bytes (" +
                             std::to_string(bytes >> 20) + " MiB)");
    return p;
  }
  static void release(void* /*self*/, void* buffer) { std::free(buffer); }
  static lamina_status copy_in(void* /*self*/, void* buffer, size_t offset, const void* source, size_t bytes,
                               lamina_error* error) {
    if (bytes == 0) return LAMINA_OK;
    if (!buffer || !source) {
      write_error(error, "copy_in with a null buffer or source");
      return LAMINA_ERROR;
    }
    std::memcpy(static_cast<char*>(buffer) + offset, source, bytes);
    return LAMINA_OK;
  }
  static lamina_status copy_out(void* /*self*/, const void* buffer, size_t offset, void* destination,
                                size_t bytes, lamina_error* error) {
    if (bytes == 0) return LAMINA_OK;
    if (!buffer || !destination) {
      write_error(error, "copy_out with a null buffer or destination");
      return LAMINA_ERROR;
    }
    std::memcpy(destination, static_cast<const char*>(buffer) + offset, bytes);
    return LAMINA_OK;
  }
  // Kernels that finish their work before returning leave nothing to wait for.
  static lamina_status synchronize(void* /*self*/, lamina_error* /*error*/) { return LAMINA_OK; }

  // A backend table with these functions and `self`; the caller adds the device.
  static lamina_backend table(void* self = nullptr) {
    return backend_table(self, true, alloc, release, copy_in, copy_out, synchronize);
  }
};

}  // namespace lamina::sdk

// Defines kernel `fn` for op `op` of the backend POLICY and enters it in the policy's kernel table.
// The body sees `args` (lamina::sdk::KernelArgs&) and `be` (POLICY::State&).
#define LAMINA_BACKEND_KERNEL(POLICY, fn, op)                                                         \
  static void fn##_body(::lamina::sdk::KernelArgs& args, [[maybe_unused]] POLICY::State& be);         \
  static lamina_status fn(void* backend, const lamina_view* in, int32_t n_in, const lamina_view* out, \
                          int32_t n_out, const lamina_attrs* attrs, lamina_error* error) {            \
    ::lamina::sdk::KernelArgs args{backend, in, n_in, out, n_out, ::lamina::sdk::AttrReader(attrs)};  \
    return ::lamina::sdk::run_kernel<POLICY>(op, args, error,                                         \
                                             [&](POLICY::State& state) { fn##_body(args, state); });  \
  }                                                                                                   \
  static const ::lamina::sdk::KernelEntry<POLICY> fn##_entry(op, fn);                                 \
  static void fn##_body(::lamina::sdk::KernelArgs& args, [[maybe_unused]] POLICY::State& be)
