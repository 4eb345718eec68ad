// What a Tensor is inside the core: a shape and a view into a Buffer owned by a backend (or by the
// host allocator), plus its autograd links. Buffers are cached for reuse (tensor.cpp).
// Depends on backend_entry.hpp only through pointers; tensor.cpp reports host writes to the
// launch recorder (launch_recorder.hpp).
#pragma once

#include <lamina/lamina_plugin.h>
#include <lamina/tensor.hpp>

#include <atomic>
#include <cstddef>
#include <memory>

namespace lamina {

struct BackendEntry;  // backend_entry.hpp
struct Node;          // autograd.hpp

// Memory owned by one backend (or by the core's host allocator when `backend` is null).
struct Buffer {
  BackendEntry* backend = nullptr;
  void* handle = nullptr;
  size_t bytes = 0;
  ~Buffer();
};

struct TensorImpl {
  std::atomic<int> refs{1};
  Shape shape;
  std::shared_ptr<Buffer> buffer;
  size_t offset = 0;  // bytes
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // the op that produced this tensor, while recording
  int output_index = 0;
  // The input of the op that made this tensor when that op declares its output probabilities of it
  // (softmax): cross-entropy reads these logits instead, with or without autograd.
  Tensor logits;
};

// Memory of `bytes` from `backend` (host memory owned by the core when null).
std::shared_ptr<Buffer> allocate(BackendEntry* backend, size_t bytes);
Tensor make_tensor(Shape shape, BackendEntry* backend);  // uninitialised
// Whether `backend`'s kernels can use `t`'s memory directly.
bool reachable(const Tensor& t, const BackendEntry& backend);
// `t` usable by `backend`'s kernels: itself if its memory is reachable, else a copy.
Tensor on_backend(const Tensor& t, BackendEntry& backend);
// `t` in host memory: itself, or a copy from its device.
Tensor to_host(const Tensor& t);
lamina_view view_of(const Tensor& t);
// A new tensor on the same memory, without autograd links.
Tensor detached(const Tensor& t);
// Releases the buffers the allocator keeps for reuse (before backends shut down).
void release_cached_buffers();

}  // namespace lamina
