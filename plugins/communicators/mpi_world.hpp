// What the mpi and nccl communicators share: MPI's world (started here when a launcher started the
// process), and host-memory collectives as non-blocking MPI calls polled against a deadline.
#pragma once

#include <lamina/sdk/plugin.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>
#include <thread>

namespace lamina::mpi {
namespace {

struct World {
  int rank = 0, size = 1;
  bool initialized_here = false;
  double timeout_seconds = 300;
  std::string description;
};
World world;

bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(variable)) return true;
  const char* requested = std::getenv("LAMINA_COMMUNICATOR");
  return requested && std::string(requested) == "mpi";
}

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, size_t(length));
}

// Waits for `request` until the deadline; false (with the reason) when it does not complete.
bool wait(MPI_Request& request, const char* what, lamina_error* error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(world.timeout_seconds);
  for (int spins = 0;; ++spins) {
    int done = 0;
    if (int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE); rc != MPI_SUCCESS) {
      sdk::write_error(error, std::string(what) + ": " + mpi_error(rc));
      return false;
    }
    if (done) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      sdk::write_error(error, std::string(what) + ": no answer from the other ranks for " +
                                  std::to_string(int(world.timeout_seconds)) +
                                  " s (LAMINA_COMM_TIMEOUT); a rank has died or hangs");
      return false;
    }
    if (spins > 1000) std::this_thread::yield();  // a long wait: leave the core to the others
  }
}

lamina_status allreduce_sum(void*, float* data, size_t count, lamina_error* error) {
  for (size_t done = 0; done < count;) {  // MPI counts are int
    const int chunk = int(std::min<size_t>(count - done, INT_MAX));
    MPI_Request request;
    if (int rc = MPI_Iallreduce(MPI_IN_PLACE, data + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
        rc != MPI_SUCCESS) {
      sdk::write_error(error, "MPI_Iallreduce: " + mpi_error(rc));
      return LAMINA_ERROR;
    }
    if (!wait(request, "MPI_Iallreduce", error)) return LAMINA_ERROR;
    done += size_t(chunk);
  }
  return LAMINA_OK;
}

lamina_status broadcast(void*, float* data, size_t count, int32_t root, lamina_error* error) {
  for (size_t done = 0; done < count;) {
    const int chunk = int(std::min<size_t>(count - done, INT_MAX));
    MPI_Request request;
    if (int rc = MPI_Ibcast(data + done, chunk, MPI_FLOAT, root, MPI_COMM_WORLD, &request); rc != MPI_SUCCESS) {
      sdk::write_error(error, "MPI_Ibcast: " + mpi_error(rc));
      return LAMINA_ERROR;
    }
    if (!wait(request, "MPI_Ibcast", error)) return LAMINA_ERROR;
    done += size_t(chunk);
  }
  return LAMINA_OK;
}

// Usable only in a process an MPI launcher started: MPI is not initialised anywhere else.
int32_t score(std::string& why) {
  if (launched_by_mpi()) return 1;
  why = "not started by mpirun/mpiexec (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment)";
  return 0;
}

// Starts MPI (once per process, whichever communicator comes first) and fills `world`.
void start_world() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided); rc != MPI_SUCCESS)
      throw sdk::Error("MPI_Init_thread failed: " + mpi_error(rc));
    world.initialized_here = true;
    // MPI_Finalize when the process ends normally: a launcher treats a rank that exits without it
    // as failed and stops the job.
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size);
  if (const char* t = std::getenv("LAMINA_COMM_TIMEOUT"); t && *t) world.timeout_seconds = std::atof(t);
  if (!(world.timeout_seconds > 0)) world.timeout_seconds = 300;
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(library, &length);
  std::string name(library, size_t(length));
  if (auto end = name.find_first_of(",\n"); end != std::string::npos) name.resize(end);
  world.description = name + ", rank " + std::to_string(world.rank) + " of " + std::to_string(world.size);
}

void require_communicator_abi(const lamina_host* host) {
  if (!LAMINA_HOST_HAS(host, register_communicator))
    throw sdk::Error("this lamina is older than the communicator interface (plugin ABI 1.1)");
}

}  // namespace
}  // namespace lamina::mpi
