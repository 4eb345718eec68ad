// Device memory for the cudnn backend: the caching allocator over cudaMalloc, scratch and workspace
// buffers for the kernels, copies between the host and the device, and the shared error helpers.
#include <cstring>
#include <string>

#include "kernels.hpp"

namespace lamina::cudnn {

// ------------------------------------------------------------------------------------------------
// Errors and checks

void throw_cuda(cudaError_t error, const std::string& what) {
  throw sdk::Error(what + ": CUDA error " + cudaGetErrorName(error) + " (" + std::to_string(int(error)) +
                   "): " + cudaGetErrorString(error));
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw sdk::Error(std::string(what) + ": cuBLAS returned " + cublasGetStatusName(status) + " (" +
                     std::to_string(int(status)) + "): " + cublasGetStatusString(status));
}

Launch launch_for(const Backend& backend, int64_t n, unsigned threads) {
  // Eight 256-thread blocks fill a multiprocessor (2,048 resident threads); grid-stride loops cover
  // the rest, so the block count stays far below CUDA's limit whatever n is.
  const int64_t wanted = (n + threads - 1) / threads;
  const int64_t cap = int64_t(backend.sm_count) * 8;
  return {unsigned(std::max<int64_t>(1, std::min(wanted, cap))), threads};
}

// ------------------------------------------------------------------------------------------------
// Raw memory, scratch, workspace

void* CudaMemory::allocate(size_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    // A failed cudaMalloc also sets the runtime's last error, which the next kernel's launch check
    // would report as its own: clear it, the caller handles the failure.
    (void)cudaGetLastError();
    return nullptr;
  }
  return p;
}

void CudaMemory::free(void* block) {
  (void)cudaFree(block);
}

void CudaMemory::synchronize() {
  (void)cudaDeviceSynchronize();
}

Scratch::Scratch(Backend& backend, int64_t floats) : backend_(&backend) {
  const size_t bytes = size_t(std::max<int64_t>(floats, 1)) * sizeof(float);
  data_ = static_cast<float*>(backend.allocator.allocate(bytes));
  if (!data_) {
    backend_ = nullptr;
    const AllocatorStats s = backend.allocator.stats();
    throw sdk::Error("out of device memory for " + std::to_string(bytes >> 20) + " MiB of scratch space (" +
                     std::to_string(s.in_use_bytes >> 20) + " MiB in use)");
  }
}

void release_block(Backend& backend, void* block) {
  if (backend.graph_blocks)
    backend.graph_blocks->push_back(block);
  else
    backend.allocator.release(block);
}

Scratch::~Scratch() {
  if (backend_ && data_) release_block(*backend_, data_);
}

void* workspace(Backend& backend, size_t bytes) {
  if (bytes == 0) return backend.workspace;
  if (bytes <= backend.workspace_bytes) return backend.workspace;
  if (backend.workspace) release_block(backend, backend.workspace);
  backend.workspace = backend.allocator.allocate(bytes);
  backend.workspace_bytes = backend.workspace ? bytes : 0;
  return backend.workspace;
}

// ------------------------------------------------------------------------------------------------
// The backend table's memory functions

namespace {

void* device_alloc(void* self, size_t bytes, lamina_error* error) {
  auto& backend = *static_cast<Backend*>(self);
  void* p = backend.allocator.allocate(bytes);
  if (!p) {
    const AllocatorStats s = backend.allocator.stats();
    sdk::write_error(error, "cudnn backend: out of device memory allocating " + std::to_string(bytes) +
                                " bytes (" + std::to_string(bytes >> 20) + " MiB); " +
                                std::to_string(s.in_use_bytes >> 20) + " MiB are in use by tensors");
  }
  return p;
}

void device_release(void* self, void* buffer) {
  auto& backend = *static_cast<Backend*>(self);
  if (!buffer || backend.allocator.release(buffer)) return;
  if (const lamina_host* host = sdk::host_table(); host && host->log)
    host->log(2, "cudnn backend: release of a buffer this backend did not allocate (ignored)");
}

void prepare_staging(Staging& s) {
  s.ready = true;
  for (int i = 0; i < Staging::kSlots; ++i) {
    if (cudaHostAlloc(&s.slot[i], Staging::kSlotBytes, cudaHostAllocDefault) != cudaSuccess ||
        cudaEventCreateWithFlags(&s.done[i], cudaEventDisableTiming) != cudaSuccess) {
      // Pinned memory is a speed-up only; without it every copy takes the pageable path.
      (void)cudaGetLastError();
      s.slot[i] = nullptr;
      return;
    }
  }
}

const char* kEarlierKernel =
    " (an error here may come from an earlier kernel, since kernels run asynchronously; LAMINA_CUDNN_SYNC=1 "
    "makes each kernel wait and report its own)";

lamina_status device_copy_in(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                             lamina_error* error) {
  return sdk::guarded(error, [&] {
    if (bytes == 0) return;
    if (!buffer || !source) throw sdk::Error("cudnn backend: copy_in with a null buffer or source");
    auto& backend = *static_cast<Backend*>(self);
    std::lock_guard lock(backend.mutex);
    check_cuda(cudaSetDevice(backend.device), "cudnn backend: selecting the device");
    char* target = static_cast<char*>(buffer) + offset;
    Staging& s = backend.staging;
    if (!s.ready) prepare_staging(s);
    const int i = s.next;
    if (bytes <= Staging::kSlotBytes && s.slot[Staging::kSlots - 1]) {
      // The slot is free once the copy queued from it last time has run.
      s.next = (i + 1) % Staging::kSlots;
      check_cuda(cudaEventSynchronize(s.done[i]), "cudnn backend: waiting for a staging buffer");
      std::memcpy(s.slot[i], source, bytes);
      check_cuda(cudaMemcpyAsync(target, s.slot[i], bytes, cudaMemcpyHostToDevice, backend.stream),
                 "cudnn backend: copying to the device");
      check_cuda(cudaEventRecord(s.done[i], backend.stream), "cudnn backend: recording a copy");
    } else {
      // From pageable memory CUDA may return before the copy has read `source`, which the caller
      // may free as soon as this returns: wait for it.
      check_cuda(cudaMemcpyAsync(target, source, bytes, cudaMemcpyHostToDevice, backend.stream),
                 "cudnn backend: copying to the device");
      check_cuda(cudaStreamSynchronize(backend.stream),
                 (std::string("cudnn backend: copying to the device") + kEarlierKernel).c_str());
    }
  });
}

lamina_status device_copy_out(void* self, const void* buffer, size_t offset, void* destination, size_t bytes,
                              lamina_error* error) {
  return sdk::guarded(error, [&] {
    if (bytes == 0) return;
    if (!buffer || !destination)
      throw sdk::Error("cudnn backend: copy_out with a null buffer or destination");
    auto& backend = *static_cast<Backend*>(self);
    std::lock_guard lock(backend.mutex);
    check_cuda(cudaSetDevice(backend.device), "cudnn backend: selecting the device");
    const char* source = static_cast<const char*>(buffer) + offset;
    const std::string what = std::string("cudnn backend: copying ") + std::to_string(bytes) +
                             " bytes to the host" + kEarlierKernel;
    check_cuda(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost, backend.stream),
               what.c_str());
    check_cuda(cudaStreamSynchronize(backend.stream), what.c_str());
  });
}

lamina_status device_synchronize(void* self, lamina_error* error) {
  return sdk::guarded(error, [&] {
    auto& backend = *static_cast<Backend*>(self);
    std::lock_guard lock(backend.mutex);
    check_cuda(cudaSetDevice(backend.device), "cudnn backend: selecting the device");
    check_cuda(cudaStreamSynchronize(backend.stream),
               (std::string("cudnn backend: synchronize") + kEarlierKernel).c_str());
  });
}

}  // namespace

lamina_backend memory_table(Backend& backend) {
  return sdk::backend_table(&backend, false, device_alloc, device_release, device_copy_in, device_copy_out,
                            device_synchronize);
}

}  // namespace lamina::cudnn
