// The "mpi" communicator: data-parallel training across processes started by mpirun / mpiexec
// (Open MPI, MPICH). Collectives are non-blocking MPI calls polled against a deadline, so a rank
// that has died or hangs turns into an error on the others after LAMINA_COMM_TIMEOUT seconds
// (default 300) instead of a silent hang.
#include "mpi_world.hpp"

namespace lamina::mpi {
namespace {

lamina_communicator table{};

void init(const lamina_host* host) {
  require_communicator_abi(host);
  start_world();
  table.struct_size = sizeof(table);
  table.name = "mpi";
  table.description = world.description.c_str();
  table.self = &world;
  table.rank = world.rank;
  table.size = world.size;
  table.allreduce_sum = allreduce_sum;
  table.broadcast = broadcast;
  ErrorSlot error;
  sdk::check(host->register_communicator(host->self, &table, &error), error);
}

}  // namespace
}  // namespace lamina::mpi

LAMINA_PLUGIN("mpi", "0.1.0", LAMINA_KIND_COMMUNICATOR,
              "data-parallel training across processes through MPI (Open MPI, MPICH): allreduce, broadcast",
              lamina::mpi::init, lamina::mpi::score)
