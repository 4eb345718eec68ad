// The communicator fit() and evaluate() use, and timed collectives on it (distributed.cpp).
#pragma once

#include <lamina/lamina_plugin.h>

#include <cstddef>

namespace lamina::distributed {

// The communicator fit() and evaluate() use on this thread: nullptr in a job of one, or inside a
// LocalScope.
const lamina_communicator* active_communicator();
// A collective on `c`, timed under LAMINA_PROFILE; failures throw naming `what` and the rank.
void allreduce(const lamina_communicator& c, float* data, size_t count, const char* what);
void broadcast(const lamina_communicator& c, float* data, size_t count, int root, const char* what);

}  // namespace lamina::distributed
