// The job this process belongs to: a communicator plugin's rank and size, or a job of one.
#include "distributed.hpp"
#include "plugins.hpp"
#include "profiler.hpp"

#include <lamina/distributed.hpp>
#include <lamina/error.hpp>

#include <chrono>
#include <cstdlib>
#include <mutex>

namespace lamina::distributed {

namespace {

thread_local int local_scopes = 0;

// The communicator the environment asks for: LAMINA_COMMUNICATOR, or "mpi" when an MPI launcher
// (Open MPI, MPICH, Intel MPI, Slurm's PMI) started this process; "" for a job of one.
std::string requested_communicator() {
  if (const char* name = std::getenv("LAMINA_COMMUNICATOR"); name && *name) return name;
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(variable)) return "mpi";
  return "";
}

const lamina_communicator* world() {
  static const lamina_communicator* communicator = [] {
    const std::string name = requested_communicator();
    if (name.empty() || name == "none") return static_cast<const lamina_communicator*>(nullptr);
    std::string why;
    const lamina_communicator* c = Registry::get().communicator(name, why);
    if (!c)
      throw Error("this process was started for a data-parallel job (communicator '" + name + "') but " + why +
                  (why.find("Plugin folders searched") != std::string::npos
                       ? "; lamina builds the mpi communicator when CMake finds MPI (Debian: libopenmpi-dev)"
                       : "") +
                  "; LAMINA_COMMUNICATOR=none runs each process as a job of one");
    return c;
  }();
  return communicator;
}

}  // namespace

void allreduce(const lamina_communicator& c, float* data, size_t count, const char* what) {
  ErrorSlot error;
  const auto start = std::chrono::steady_clock::now();
  const lamina_status status = c.allreduce_sum(c.self, data, count, &error);
  if (profiling())
    profile_record(std::string(c.name) + " allreduce (" + what + ")",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (status != LAMINA_OK)
    throw Error(std::string("distributed training: the allreduce of ") + what + " failed on rank " +
                std::to_string(c.rank) + " of " + std::to_string(c.size) + ": " + error.message);
}

void broadcast(const lamina_communicator& c, float* data, size_t count, int root, const char* what) {
  ErrorSlot error;
  if (c.broadcast(c.self, data, count, root, &error) != LAMINA_OK)
    throw Error(std::string("distributed training: broadcasting ") + what + " failed on rank " +
                std::to_string(c.rank) + " of " + std::to_string(c.size) + ": " + error.message);
}

// The communicator fit() and evaluate() use on this thread: nullptr in a job of one.
const lamina_communicator* active_communicator() {
  if (local_scopes > 0) return nullptr;
  const lamina_communicator* c = world();
  return c && c->size > 1 ? c : nullptr;
}

int rank() { return world() ? world()->rank : 0; }
int size() { return world() ? world()->size : 1; }
bool is_primary() { return rank() == 0; }
std::string description() {
  if (!world()) return "job of one process";
  return world()->description ? world()->description : world()->name;
}

void allreduce_sum(float* data, size_t count) {
  const lamina_communicator* c = world();
  if (!c || c->size == 1 || count == 0) return;
  allreduce(*c, data, count, "the caller's data");
}

void broadcast(float* data, size_t count, int root) {
  const lamina_communicator* c = world();
  if (!c || c->size == 1 || count == 0) return;
  if (root < 0 || root >= c->size)
    throw Error("broadcast: root " + std::to_string(root) + " is not a rank of this job of " + std::to_string(c->size));
  broadcast(*c, data, count, root, "the caller's data");
}

LocalScope::LocalScope() { ++local_scopes; }
LocalScope::~LocalScope() { --local_scopes; }

}  // namespace lamina::distributed
