// The reference backend's entry points: plain single-threaded C++ loops that accumulate in double.
// It is the oracle the other backends are tested against, and the fallback that runs anywhere. Its
// buffers are the SDK's plain host memory; its kernels are those its source files define.
#include "kernels.hpp"

#include <string>

namespace lamina::reference {
namespace {

// Always usable, but ranked below every optimised backend: it is chosen only when nothing else is.
int32_t score(std::string& /*why*/) {
  return 10;
}

void init(const lamina_host* host) {
  lamina_backend table = sdk::HostMemory::table();
  table.device = "CPU (plain C++ loops, double accumulation)";
  sdk::register_backend<Kernels>(host, table);
}

}  // namespace
}  // namespace lamina::reference

LAMINA_PLUGIN("reference", "0.1.0", LAMINA_KIND_BACKEND,
              "Reference backend: plain C++ loops accumulating in double; the oracle other backends are "
              "tested against",
              lamina::reference::init, lamina::reference::score)
