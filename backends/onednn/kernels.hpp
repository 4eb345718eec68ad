// Shared state and helpers of the onednn backend, and the kernel lists each op family provides.
// Every kernel receives contiguous row-major float32 views (NHWC activations, HWIO conv kernels)
// with outputs preallocated. oneDNN primitives read and write those buffers in place through
// plain memory descriptors, except the convolution weights (and, for shapes without a
// channels-last kernel, the activations), which are reordered to the layout oneDNN picks.
// Ops with no exact or no faster oneDNN primitive are OpenMP loops (loops.hpp). Small work runs
// on the calling thread (SerialScope, parallel_chunks): the seed MLP's tensors are a few thousand
// floats, and a parallel region would cost more than the arithmetic.
#pragma once

#include <lamina/sdk/plugin.hpp>

#include <omp.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "primitive_cache.hpp"

namespace lamina::onednn {

// One per loaded plugin, created in init and passed to every call as `self`.
struct Backend {
  dnnl::engine engine;
  dnnl::stream stream;
  std::string device;
  // Cached entries own staging buffers and bound memory handles, so two kernels must not run
  // oneDNN work at once; kernels that are plain loops do not take it.
  std::mutex mutex;
  PrimitiveCache cache{512};

  Backend() : engine(dnnl::engine::kind::cpu, 0), stream(engine) {}
  ~Backend() { std::free(scratch_); }

  // The scratchpad every primitive shares (they run one at a time, under `mutex`), at least
  // `bytes` long. Left to oneDNN, each call of a matmul with a transposed operand or of a
  // convolution allocates and frees its own, which costs more than a small matmul itself.
  void* scratchpad(size_t bytes) {
    if (bytes > scratch_bytes_) {
      std::free(scratch_);
      scratch_bytes_ = (bytes + 4095) / 4096 * 4096;
      scratch_ = std::aligned_alloc(4096, scratch_bytes_);
      if (!scratch_) {
        scratch_bytes_ = 0;
        throw sdk::Error("onednn: out of memory for a scratchpad of " + std::to_string(bytes) + " bytes");
      }
    }
    return scratch_;
  }

 private:
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

// A primitive's scratchpad, given by the caller (scratchpad_mode::user) from the backend's shared one.
class Scratchpad {
 public:
  Scratchpad() = default;
  Scratchpad(const dnnl::memory::desc& md, const dnnl::engine& engine)
      : bytes_(md.get_size()), memory_(bytes_ ? dnnl::memory(md, engine, DNNL_MEMORY_NONE) : dnnl::memory()) {}
  // Adds DNNL_ARG_SCRATCHPAD to `args`, bound to the shared buffer (call under the backend's mutex).
  void add_to(Backend& be, std::unordered_map<int, dnnl::memory>& args) {
    if (!bytes_) return;
    memory_.set_data_handle(be.scratchpad(bytes_));
    args[DNNL_ARG_SCRATCHPAD] = memory_;
  }

 private:
  size_t bytes_ = 0;
  dnnl::memory memory_;
};

// Primitive attributes with a caller-provided scratchpad (see Backend::scratchpad).
inline dnnl::primitive_attr user_scratchpad(dnnl::primitive_attr attr = {}) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

inline Backend& backend_of(const sdk::KernelArgs& args) {
  if (!args.backend) throw sdk::Error("onednn: kernel called without its backend state");
  return *static_cast<Backend*>(args.backend);
}

// Below this many elements an OpenMP region costs more than the work it splits.
constexpr int64_t kParallelThreshold = 1 << 15;
// Below this many multiply-adds a matmul or convolution runs on one thread, for the same reason.
constexpr int64_t kParallelMacs = 1 << 20;

// Runs the oneDNN work of its scope on the calling thread alone when `serial`. oneDNN splits every
// primitive over all OpenMP threads however small it is, and a parallel region costs microseconds
// on an idle machine and a scheduler time slice (milliseconds) on a busy one, where a thread of
// the team may not be running; small tensors (the seed MLP's, the loss, the last layers) are
// cheaper on one thread. A primitive must be created and executed under the same setting, so
// kernels decide from the shape alone and use the scope around both.
class SerialScope {
 public:
  explicit SerialScope(bool serial) : previous_(omp_get_max_threads()), active_(serial && previous_ > 1) {
    if (active_) omp_set_num_threads(1);
  }
  ~SerialScope() {
    if (active_) omp_set_num_threads(previous_);
  }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int previous_;
  bool active_;
};

// The oneDNN post-op for a fused activation (none for linear).
inline dnnl::primitive_attr activation_attr(sdk::Activation act) {
  dnnl::primitive_attr attr;
  dnnl::algorithm alg;
  switch (act) {
    case sdk::Activation::relu: alg = dnnl::algorithm::eltwise_relu; break;
    case sdk::Activation::sigmoid: alg = dnnl::algorithm::eltwise_logistic; break;
    case sdk::Activation::tanh: alg = dnnl::algorithm::eltwise_tanh; break;
    default: return attr;
  }
  dnnl::post_ops po;
  po.append_eltwise(1.f, alg, 0.f, 0.f);
  attr.set_post_ops(po);
  return attr;
}

// "(2,28,28,1)"
inline std::string shape_string(const lamina_view& v) {
  std::string s = "(";
  for (int32_t i = 0; i < v.ndim; ++i) {
    if (i) s += ',';
    s += std::to_string(v.shape[i]);
  }
  s += ')';
  return s;
}

inline std::string describe_call(const sdk::KernelArgs& args) {
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

// Checks the counts and element types of a kernel's views; `extra_inputs_ok` lets generators
// (fill, dropout_mask) accept a shape-giving input they do not read.
inline void expect_views(const sdk::KernelArgs& args, const char* op, int n_inputs, int n_outputs,
                         bool extra_inputs_ok = false) {
  bool inputs_ok = extra_inputs_ok ? args.n_inputs >= n_inputs : args.n_inputs == n_inputs;
  if (!inputs_ok || args.n_outputs != n_outputs)
    throw sdk::Error(std::string(op) + " on onednn: expects " + std::to_string(n_inputs) + " input(s) and " +
                     std::to_string(n_outputs) + " output(s), got " + std::to_string(args.n_inputs) +
                     " and " + std::to_string(args.n_outputs));
  auto check = [&](const lamina_view& v, const char* role, int i) {
    if (v.dtype != LAMINA_DTYPE_FLOAT32)
      throw sdk::Error(std::string(op) + " on onednn: " + role + " " + std::to_string(i) +
                       " is not float32 (dtype " + std::to_string(v.dtype) + ")");
    if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS)
      throw sdk::Error(std::string(op) + " on onednn: " + role + " " + std::to_string(i) + " has rank " +
                       std::to_string(v.ndim));
    if (!v.data && sdk::view_size(v) > 0)
      throw sdk::Error(std::string(op) + " on onednn: " + role + " " + std::to_string(i) + " has no data");
  };
  for (int i = 0; i < n_inputs; ++i) check(args.inputs[i], "input", i);
  for (int i = 0; i < n_outputs; ++i) check(args.outputs[i], "output", i);
}

inline void expect_rank(const char* op, const char* name, const lamina_view& v, int rank) {
  if (v.ndim != rank)
    throw sdk::Error(std::string(op) + " on onednn: " + name + " must have rank " + std::to_string(rank) +
                     ", got shape " + shape_string(v));
}

inline void expect_same_size(const char* op, const lamina_view& a, const lamina_view& b) {
  if (sdk::view_size(a) != sdk::view_size(b))
    throw sdk::Error(std::string(op) + " on onednn: shapes " + shape_string(a) + " and " + shape_string(b) +
                     " hold different numbers of elements");
}

inline const float* in_data(const lamina_view& v) {
  return static_cast<const float*>(v.data);
}
inline float* out_data(const lamina_view& v) {
  return sdk::host_data(v);
}

inline dnnl::memory::dims dims_of(const lamina_view& v) {
  return dnnl::memory::dims(v.shape, v.shape + v.ndim);
}

// Row-major descriptor for `dims`, whatever the rank.
inline dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims) {
  dnnl::memory::dims strides(dims.size());
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

// A memory object over the caller's buffer; the cached primitives rebind it on every call.
inline dnnl::memory unbound_memory(const dnnl::memory::desc& md, const dnnl::engine& engine) {
  return dnnl::memory(md, engine, DNNL_MEMORY_NONE);
}
inline void bind(const dnnl::memory& m, const void* data) {
  m.set_data_handle(const_cast<void*>(data));
}

// Runs oneDNN work for `op`, turning dnnl::error into a message that names the op and shapes.
[[noreturn]] inline void rethrow_dnnl_error(const sdk::KernelArgs& args, const char* op,
                                            const dnnl::error& e) {
  throw sdk::Error(std::string(op) + " on onednn: oneDNN refused the call: " + e.what() + " (" +
                   dnnl_status2str(e.status) + "); " + describe_call(args));
}
template <class Body>
void with_dnnl(const sdk::KernelArgs& args, const char* op, Body&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    rethrow_dnnl_error(args, op, e);
  }
}

// Host memory (memory.cpp): 64-byte aligned so every buffer suits AVX-512 loads.
void* host_alloc(void* self, size_t bytes, lamina_error* error);
void host_release(void* self, void* buffer);
lamina_status host_copy_in(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                           lamina_error* error);
lamina_status host_copy_out(void* self, const void* buffer, size_t offset, void* destination, size_t bytes,
                            lamina_error* error);
lamina_status host_synchronize(void* self, lamina_error* error);

// Each op family appends its {op name, kernel} pairs; plugin.cpp gathers them into the table.
void add_elementwise_kernels(std::vector<lamina_kernel>& kernels);
void add_reduce_kernels(std::vector<lamina_kernel>& kernels);
void add_matmul_kernels(std::vector<lamina_kernel>& kernels);
void add_conv_kernels(std::vector<lamina_kernel>& kernels);
void add_pool_kernels(std::vector<lamina_kernel>& kernels);
void add_random_kernels(std::vector<lamina_kernel>& kernels);
void add_update_kernels(std::vector<lamina_kernel>& kernels);

}  // namespace lamina::onednn
