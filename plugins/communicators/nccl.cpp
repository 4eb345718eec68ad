// The "nccl" communicator: data-parallel training with the cudnn backend, one process per GPU,
// gradients summed on the GPUs by NCCL; MPI starts the job, hands out NCCL's id and carries the
// host-side sums (loss, metrics). Chosen with LAMINA_COMMUNICATOR=nccl under mpirun.
#include "mpi_world.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

namespace lamina::nccl {
namespace {

using mpi::world;

struct Device {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int device = -1;
};
Device gpu;
lamina_communicator table{};

std::string cuda_text(cudaError_t e) { return cudaGetErrorString(e); }

// NCCL's communicator, made at the first collective on the device the backend is using then.
void start_nccl() {
  if (gpu.comm) return;
  if (cudaError_t e = cudaGetDevice(&gpu.device); e != cudaSuccess)
    throw sdk::Error("nccl: no current CUDA device: " + cuda_text(e));
  ncclUniqueId id{};
  if (world.rank == 0)
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
      throw sdk::Error(std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
  MPI_Request request;
  MPI_Ibcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD, &request);
  ErrorSlot error;
  if (!mpi::wait(request, "MPI_Ibcast (NCCL's id)", &error)) throw sdk::Error(error.message);
  if (ncclResult_t r = ncclCommInitRank(&gpu.comm, world.size, id, world.rank); r != ncclSuccess)
    throw sdk::Error(std::string("ncclCommInitRank: ") + ncclGetErrorString(r));
  if (cudaError_t e = cudaStreamCreateWithFlags(&gpu.stream, cudaStreamNonBlocking); e != cudaSuccess)
    throw sdk::Error("nccl: cudaStreamCreate: " + cuda_text(e));
}

// Sums device memory in place; waits for it against the same deadline as the MPI collectives.
lamina_status allreduce_sum_device(void*, void* buffer, size_t offset, size_t count, lamina_error* error) {
  return sdk::guarded(error, [&] {
    start_nccl();
    float* data = reinterpret_cast<float*>(static_cast<char*>(buffer) + offset);
    if (ncclResult_t r = ncclAllReduce(data, data, count, ncclFloat, ncclSum, gpu.comm, gpu.stream);
        r != ncclSuccess)
      throw sdk::Error(std::string("ncclAllReduce: ") + ncclGetErrorString(r));
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(world.timeout_seconds);
    for (;;) {
      cudaError_t e = cudaStreamQuery(gpu.stream);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) throw sdk::Error("ncclAllReduce: " + cuda_text(e));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(gpu.comm, &async);
      if (async != ncclSuccess) throw sdk::Error(std::string("ncclAllReduce: ") + ncclGetErrorString(async));
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(gpu.comm);
        gpu.comm = nullptr;
        throw sdk::Error("ncclAllReduce: no answer from the other ranks for " +
                         std::to_string(int(world.timeout_seconds)) +
                         " s (LAMINA_COMM_TIMEOUT); a rank has died or hangs");
      }
      std::this_thread::yield();
    }
  });
}

// Usable under an MPI launcher on a machine whose CUDA driver sees a GPU.
int32_t score(std::string& why) {
  if (mpi::score(why) == 0) return 0;
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    why = "no CUDA device: " + (e != cudaSuccess ? "cudaGetDeviceCount returned " + std::to_string(int(e)) + " (" +
                                                       cuda_text(e) + ")"
                                                 : std::string("the CUDA driver reports no GPU"));
    return 0;
  }
  return 2;
}

void init(const lamina_host* host) {
  mpi::require_communicator_abi(host);
  mpi::start_world();
  int version = 0;
  ncclGetVersion(&version);
  static std::string description = world.description + ", NCCL " + std::to_string(version / 10000) + "." +
                                   std::to_string(version / 100 % 100) + "." + std::to_string(version % 100);
  table.struct_size = sizeof(table);
  table.name = "nccl";
  table.description = description.c_str();
  table.self = &world;
  table.rank = world.rank;
  table.size = world.size;
  table.allreduce_sum = mpi::allreduce_sum;
  table.broadcast = mpi::broadcast;
  table.allreduce_sum_device = allreduce_sum_device;
  ErrorSlot error;
  sdk::check(host->register_communicator(host->self, &table, &error), error);
}

}  // namespace
}  // namespace lamina::nccl

LAMINA_PLUGIN("nccl", "0.1.0", LAMINA_KIND_COMMUNICATOR,
              "data-parallel training on NVIDIA GPUs: gradients summed on the devices by NCCL, one process per GPU "
              "under mpirun",
              lamina::nccl::init, lamina::nccl::score)
