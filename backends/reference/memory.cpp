// Buffers of the reference backend: plain host memory, so that any host backend can use them too.
#include "kernels.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace lamina::reference {
namespace {

// Cache-line alignment, which also satisfies every SIMD width a host backend sharing these
// buffers may assume.
constexpr size_t kAlignment = 64;

}  // namespace

void* alloc(void* /*self*/, size_t bytes, lamina_error* error) {
  // std::aligned_alloc wants a multiple of the alignment; an empty tensor still gets a distinct,
  // non-null buffer so that null can mean failure.
  if (bytes > SIZE_MAX - kAlignment) {
    sdk::write_error(error, "reference backend: cannot allocate " + std::to_string(bytes) + " bytes");
    return nullptr;
  }
  const size_t rounded = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p)
    sdk::write_error(error, "reference backend: out of host memory allocating " + std::to_string(bytes) +
                                " bytes (" + std::to_string(bytes >> 20) + " MiB)");
  return p;
}

void release(void* /*self*/, void* buffer) {
  std::free(buffer);
}

lamina_status copy_in(void* /*self*/, void* buffer, size_t offset, const void* source, size_t bytes,
                      lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !source) {
    sdk::write_error(error, "reference backend: copy_in with a null buffer or source");
    return LAMINA_ERROR;
  }
  std::memcpy(static_cast<char*>(buffer) + offset, source, bytes);
  return LAMINA_OK;
}

lamina_status copy_out(void* /*self*/, const void* buffer, size_t offset, void* destination, size_t bytes,
                       lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !destination) {
    sdk::write_error(error, "reference backend: copy_out with a null buffer or destination");
    return LAMINA_ERROR;
  }
  std::memcpy(destination, static_cast<const char*>(buffer) + offset, bytes);
  return LAMINA_OK;
}

// Kernels run synchronously on the calling thread, so there is never anything to wait for.
lamina_status synchronize(void* /*self*/, lamina_error* /*error*/) {
  return LAMINA_OK;
}

}  // namespace lamina::reference
