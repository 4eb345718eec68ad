// Data-parallel training across processes, in the style of Horovod and PyTorch DDP.
//
// A process started by mpirun / mpiexec (or with LAMINA_COMMUNICATOR=<name>) joins a job through a
// communicator plugin (plugins/communicators/: "mpi"); any other process is a job of one and
// nothing changes. In a job of N ranks, fit() broadcasts rank 0's weights, gives each rank its
// share of every global batch (batch_size per rank, N x batch_size in all), averages the gradients
// with an allreduce before every optimizer step, and reduces the epoch's metrics, so that N ranks
// at batch b train as one process at batch N x b. Only rank 0 prints progress. docs/distributed.md.
#pragma once

#include <cstddef>
#include <string>

namespace lamina::distributed {

int rank();         // this process: 0 .. size() - 1; 0 in a job of one
int size();         // processes in the job; 1 without a communicator
bool is_primary();  // rank 0: the process that prints and writes files
std::string description();  // "job of one process", or the communicator's own words

// Collectives over every rank of the job (no-ops in a job of one). Every rank must call them in the
// same order. They throw lamina::Error when the communicator fails (e.g. a rank has died).
void allreduce_sum(float* data, size_t count);
void broadcast(float* data, size_t count, int root = 0);

// While one is alive, fit() and evaluate() on this thread run as a job of one even inside a job
// of many: no broadcast, no sharding, no allreduce.
class LocalScope {
 public:
  LocalScope();
  ~LocalScope();
  LocalScope(const LocalScope&) = delete;
  LocalScope& operator=(const LocalScope&) = delete;
};

}  // namespace lamina::distributed
