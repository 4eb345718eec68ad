// Shared state and helpers of the onednn backend, and the kernel lists each op family provides.
// Every kernel receives contiguous row-major float32 views (NHWC activations, HWIO conv kernels)
// with outputs preallocated. oneDNN primitives read and write those buffers in place through
// plain memory descriptors, except the convolution weights (and, for shapes without a
// channels-last kernel, the activations), which are reordered to the layout oneDNN picks.
// Ops with no exact or no faster oneDNN primitive are OpenMP loops (loops.hpp). Small work runs
// on the calling thread (SerialScope, parallel_chunks): the seed MLP's tensors are a few thousand
// floats, and a parallel region would cost more than the arithmetic.
#pragma once

#include <lamina/sdk/geometry.hpp>

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

#include "loops.hpp"
#include "primitive_cache.hpp"
#include "team.hpp"
#include "winograd.hpp"

namespace lamina::onednn {

using namespace sdk;  // the SDK's checks and geometry read as this backend's own

// One per loaded plugin, created in init and passed to every call as `self`.
struct Backend {
  dnnl::engine engine;
  dnnl::stream stream;
  std::string device;
  // Cached entries own staging buffers and bound memory handles, so two kernels must not run
  // oneDNN work at once; kernels that are plain loops do not take it.
  std::mutex mutex;
  PrimitiveCache cache{512};
  // The convolution algorithm chosen for each shape and pass (0: oneDNN's direct convolution, else
  // the Winograd output tile), and the Winograd kernels' memory (conv.cpp).
  std::unordered_map<CacheKey, int, CacheKeyHash> conv_algorithm;
  winograd::Workspace winograd_workspace;
  // The team size while no thread count is set (team.hpp).
  AdaptiveTeam team;

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
      : bytes_(md.get_size()),
        memory_(bytes_ ? dnnl::memory(md, engine, DNNL_MEMORY_NONE) : dnnl::memory()) {}
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

// Kernels take the backend's lock themselves, around oneDNN work only: the loops run unlocked.
struct Kernels : sdk::KernelPolicy {
  static constexpr const char* name = "onednn";
  using State = Backend;
  template <class Body>
  static void run(Backend& be, const sdk::KernelArgs& /*args*/, Body&& body) {
    be.team.adapt();
    body();
  }
};

inline Backend& backend_of(const sdk::KernelArgs& args) {
  return sdk::state_of<Kernels>(args);
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
    case sdk::Activation::relu:
      alg = dnnl::algorithm::eltwise_relu;
      break;
    case sdk::Activation::sigmoid:
      alg = dnnl::algorithm::eltwise_logistic;
      break;
    case sdk::Activation::tanh:
      alg = dnnl::algorithm::eltwise_tanh;
      break;
    default:
      return attr;
  }
  dnnl::post_ops po;
  po.append_eltwise(1.f, alg, 0.f, 0.f);
  attr.set_post_ops(po);
  return attr;
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

// Runs oneDNN work, turning dnnl::error into a message that names the shapes of the call.
template <class Body>
void with_dnnl(const sdk::KernelArgs& args, Body&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    throw sdk::Error(std::string("oneDNN refused the call: ") + e.what() + " (" + dnnl_status2str(e.status) +
                     "); " + describe_call(args));
  }
}

// Host memory (memory.cpp): the SDK's plain host memory, and a synchronize that waits on the stream.
lamina_backend memory_table(Backend& backend);

}  // namespace lamina::onednn

// Defines kernel `fn` of op `op` with a body operating on `args` and `be` (Backend&). Use inside
// namespace lamina::onednn.
#define ONEDNN_KERNEL(fn, op) LAMINA_BACKEND_KERNEL(::lamina::onednn::Kernels, fn, op)
