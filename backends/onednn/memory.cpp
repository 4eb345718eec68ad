// Host memory for the onednn backend: the SDK's plain host memory (host_memory = 1), so the core
// may hand buffers to any other host backend and back without copies.
#include <string>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

// Kernels wait on the stream before returning, so there is never outstanding work; waiting
// again keeps the contract honest should that change.
lamina_status host_synchronize(void* self, lamina_error* error) {
  return sdk::guarded(error, [&] {
    try {
      static_cast<Backend*>(self)->stream.wait();
    } catch (const dnnl::error& e) {
      throw sdk::Error(std::string("onednn: synchronize failed: ") + e.what());
    }
  });
}

}  // namespace

lamina_backend memory_table(Backend& backend) {
  lamina_backend t = sdk::HostMemory::table(&backend);
  t.synchronize = host_synchronize;
  return t;
}

}  // namespace lamina::onednn
