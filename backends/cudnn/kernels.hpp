// The cudnn backend: state shared by its source files, the kernel wrapper, and the kernel lists each
// op family provides.
//
// Buffers live in device memory (host_memory = 0): a view's `data` is the device pointer of a block
// from the caching allocator and `offset` the byte offset of element 0 in it. Every kernel queues its
// work on the backend's one stream and returns without waiting; copy_out waits, so results reach the
// host in order. Activations are NHWC and conv kernels HWIO (docs/ops.md); cuDNN runs NHWC with
// filters transposed to (O,KH,KW,C) for each call.
#pragma once

#include <lamina/sdk/backend.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "allocator.hpp"
#include "descriptors.hpp"
#include "geometry.hpp"

namespace lamina::cudnn {

using namespace sdk;  // the SDK's checks read as this backend's own

// ------------------------------------------------------------------------------------------------
// Errors

// "<what>: CUDA error cudaErrorMemoryAllocation (2): out of memory"
[[noreturn]] void throw_cuda(cudaError_t error, const std::string& what);
inline void check_cuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw_cuda(error, what);
}
void check_cublas(cublasStatus_t status, const char* what);

// ------------------------------------------------------------------------------------------------
// State

class CudaMemory : public RawMemory {
 public:
  void* allocate(size_t bytes) override;
  void free(void* block) override;
  void synchronize() override;
};

// Pinned host buffers that host-to-device copies go through, so that copy_in returns without
// waiting for the device: a copy from pageable memory would synchronise the stream first.
struct Staging {
  static constexpr int kSlots = 4;
  static constexpr size_t kSlotBytes = size_t(4) << 20;
  void* slot[kSlots] = {};
  cudaEvent_t done[kSlots] = {};  // recorded after the copy out of each slot
  int next = 0;
  bool ready = false;
};

// The algorithm a convolution geometry runs with, found on its first call.
struct ConvChoice {
  Layout layout = Layout::nhwc;
  int algo = 0;
  Math math = Math::fma;
  size_t workspace_bytes = 0;
};

enum class ConvOp { forward = 0, backward_data = 1, backward_filter = 2 };
using ConvKey = std::array<int64_t, 19>;

struct Backend {
  int device = 0;
  int sm_count = 1;
  std::string description;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  CudaMemory raw;
  CachingAllocator allocator{raw};
  // One kernel or copy at a time: the handles, the workspace, the descriptors below, the staging
  // slots and the caches are shared. The allocator has its own lock, since buffers are released
  // from wherever the core drops its last reference.
  std::mutex mutex;

  AlgoPolicy policy;
  bool find_algorithms = false;   // LAMINA_CUDNN_FIND=1: time the candidates instead of heuristics
  bool sync_each_kernel = false;  // LAMINA_CUDNN_SYNC=1: wait after every kernel (error attribution)
  std::map<ConvKey, ConvChoice> conv_choices;
  bool cudnn_pooling_ok = true;     // false after cuDNN refused a pool: lamina's kernels run instead
  bool cudnn_activation_ok = true;  // likewise for relu / sigmoid / tanh

  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  Staging staging;

  // While a step is captured as a CUDA graph (graphs.cpp): the blocks its kernels took for
  // themselves (scratch, the workspace), kept for the graph instead of going back to the cache,
  // since every launch of the graph uses them again. Null when no capture is running.
  std::vector<void*>* graph_blocks = nullptr;
  bool graphs = false;  // LAMINA_CUDNN_GRAPHS=1: the backend table offers graph capture

  // Reused by the kernels, which hold `mutex`.
  ConvDescriptors conv;
  TensorDesc tensor_a, tensor_b;
  PoolDesc pool;
  ActivationDesc activation;
};

// Device memory for the length of one kernel call (a transposed filter, a padded input). Released
// to the cache when it goes out of scope, while the work that uses it may still be queued: safe on
// one stream.
class Scratch {
 public:
  Scratch() = default;
  Scratch(Backend& backend, int64_t floats);
  Scratch(Scratch&& other) noexcept
      : backend_(std::exchange(other.backend_, nullptr)), data_(std::exchange(other.data_, nullptr)) {}
  Scratch& operator=(Scratch&& other) noexcept {
    std::swap(backend_, other.backend_);
    std::swap(data_, other.data_);
    return *this;
  }
  ~Scratch();
  float* data() const { return data_; }

 private:
  Backend* backend_ = nullptr;
  float* data_ = nullptr;
};

// The shared cuDNN workspace, grown to at least `bytes`; nullptr when the device has no memory for
// it (the caller then tries an algorithm that needs less).
void* workspace(Backend& backend, size_t bytes);

// Element 0 of a view.
inline float* dev(const lamina_view& v) {
  return reinterpret_cast<float*>(static_cast<char*>(v.data) + v.offset);
}

// y[0..n) = value on the backend's stream (elementwise.cu).
void fill_device(Backend& backend, float* y, int64_t n, float value);

// Blocks and threads for a grid-stride loop over n elements: enough blocks to fill the GPU, no more.
struct Launch {
  unsigned blocks = 1, threads = 256;
};
Launch launch_for(const Backend& backend, int64_t n, unsigned threads = 256);

// ------------------------------------------------------------------------------------------------
// Kernel calls

// Runs each kernel body under the backend's lock on its device, and checks that the body's kernel
// launches were accepted; with LAMINA_CUDNN_SYNC set, waits for them.
struct Kernels : sdk::KernelPolicy {
  static constexpr const char* name = "cudnn";
  using State = Backend;
  template <class Body>
  static void run(Backend& backend, const sdk::KernelArgs& /*args*/, Body&& body) {
    std::lock_guard lock(backend.mutex);
    check_cuda(cudaSetDevice(backend.device), "selecting the device");
    body();
    check_cuda(cudaGetLastError(), "launching the kernel");
    if (backend.sync_each_kernel) check_cuda(cudaStreamSynchronize(backend.stream), "running the kernel");
  }
};

// Memory (memory.cpp): a backend table with `self` and the buffer functions set.
lamina_backend memory_table(Backend& backend);
// A block a kernel is done with: back to the cache, or to the graph being captured.
void release_block(Backend& backend, void* block);
// Graphs (graphs.cpp): sets the table's capture functions.
void add_graph_functions(lamina_backend& table);

// Device helpers the fused ops share.
// y(rows, length) = activation(y + bias), bias (length) added to every row (elementwise.cu).
void add_bias_activation(Backend& be, float* y, const float* bias, int64_t rows, int64_t length,
                         sdk::Activation activation);
// y(length) = Σ over rows of x(rows, length): a bias gradient (reduce.cu).
void sum_rows_into(Backend& be, const float* x, float* y, int64_t rows, int64_t length);

// Launches one tiny kernel on `device` and reads its result back: whether this build's device code
// runs there (elementwise.cu). Empty on success, else why not.
std::string probe_device(int device);

}  // namespace lamina::cudnn

// Defines kernel `fn` of op `op` whose body sees `args` (sdk::KernelArgs&) and `be` (Backend&). Use
// inside namespace lamina::cudnn.
#define CUDNN_KERNEL(fn, op) LAMINA_BACKEND_KERNEL(::lamina::cudnn::Kernels, fn, op)

// Device code: `for` over i in [0, n) as a grid-stride loop, whatever the grid (launch_for).
#define GRID_STRIDE_LOOP(i, n)                                              \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)
