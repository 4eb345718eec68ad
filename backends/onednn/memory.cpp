// Host memory for the onednn backend. Buffers are plain host memory (host_memory = 1), so the
// core may hand them to any other host backend and back without copies.
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.hpp"

namespace lamina::onednn {

namespace {
constexpr size_t kAlignment = 64;  // one cache line, one AVX-512 register
}

void* host_alloc(void* /*self*/, size_t bytes, lamina_error* error) {
  // aligned_alloc wants a multiple of the alignment, and a zero-sized tensor still needs a
  // distinct non-null buffer.
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p)
    sdk::write_error(error, "onednn: out of host memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void host_release(void* /*self*/, void* buffer) {
  std::free(buffer);
}

lamina_status host_copy_in(void* /*self*/, void* buffer, size_t offset, const void* source, size_t bytes,
                           lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !source) {
    sdk::write_error(error, "onednn: copy_in with a null buffer or source");
    return LAMINA_ERROR;
  }
  std::memcpy(static_cast<char*>(buffer) + offset, source, bytes);
  return LAMINA_OK;
}

lamina_status host_copy_out(void* /*self*/, const void* buffer, size_t offset, void* destination,
                            size_t bytes, lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !destination) {
    sdk::write_error(error, "onednn: copy_out with a null buffer or destination");
    return LAMINA_ERROR;
  }
  std::memcpy(destination, static_cast<const char*>(buffer) + offset, bytes);
  return LAMINA_OK;
}

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

}  // namespace lamina::onednn
