// Tensors (lamina/tensor.hpp) and their memory (tensor_impl.hpp): the buffer cache, allocation,
// views for kernels, copies between backends.
#include "tensor_impl.hpp"

#include "backend_entry.hpp"
#include "launch_recorder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <mutex>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

namespace lamina {

std::string shape_to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

int64_t shape_size(const Shape& shape) {
  // Shapes can come from files: an overflowing product saturates (and is then refused as too
  // large) instead of wrapping around.
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      return (d < 0) != (n < 0) ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  return n;
}

namespace {

// Bytes actually allocated for a request: whole cache lines, never zero (a zero-sized tensor still
// needs a distinct buffer).
size_t rounded_size(size_t bytes) { return std::max<size_t>(64, (bytes + 63) / 64 * 64); }

void release_now(BackendEntry* backend, void* handle) {
  if (backend)
    backend->table.release(backend->table.self, handle);
  else
    std::free(handle);
}

// Buffers freed by tensors, kept by backend and size for the next tensor of that size. A training
// step allocates the same sizes every step, so after the first one it allocates nothing, and big
// activations do not pay for fresh pages (mapped and zeroed by the kernel) at every step.
//
// Large buffers gain the most: the C allocator maps and unmaps anything over 32 MB on every call,
// so a 74 MB activation (the seed CNN's first layer, predicting 1000 images at a time) would be
// page-faulted in anew for every batch; caching them made that inference 1.5x faster.
//
// Bounded by LAMINA_BUFFER_CACHE_MB (default 512; 0 turns the cache off): a buffer that would
// overflow it empties the cache first, which happens when a program moves on to other shapes, not
// within a steady loop; a buffer over a quarter of the bound is never kept.
class BufferCache {
 public:
  static BufferCache& get() {
    static BufferCache* cache = new BufferCache;  // never destroyed: tensors die during static destruction too
    return *cache;
  }

  void* take(BackendEntry* backend, size_t size) {
    std::lock_guard lock(mutex_);
    auto it = free_.find(Key{backend, size});
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* handle = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    return handle;
  }

  // Keeps `handle` for reuse; false when the caller must release it.
  bool give(BackendEntry* backend, void* handle, size_t size) {
    std::vector<std::pair<Key, void*>> evicted;
    {
      std::lock_guard lock(mutex_);
      if (!enabled_ || size > limit_ / 4) return false;
      if (cached_ + size > limit_) evicted = drain();
      free_[Key{backend, size}].push_back(handle);
      cached_ += size;
    }
    for (auto& [key, h] : evicted) release_now(key.backend, h);
    return true;
  }

  // Releases everything and stops caching (at exit, before the backends shut down).
  void release_all() {
    std::vector<std::pair<Key, void*>> evicted;
    {
      std::lock_guard lock(mutex_);
      enabled_ = false;
      evicted = drain();
    }
    for (auto& [key, h] : evicted) release_now(key.backend, h);
  }

 private:
  struct Key {
    BackendEntry* backend;
    size_t size;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<const void*>{}(k.backend) ^ (std::hash<size_t>{}(k.size) * 0x9E3779B97F4A7C15ull);
    }
  };

  BufferCache() {
    const char* env = std::getenv("LAMINA_BUFFER_CACHE_MB");
    long mb = env && *env ? std::strtol(env, nullptr, 10) : 512;
    limit_ = size_t(std::max(0L, mb)) << 20;
    enabled_ = limit_ > 0;
  }
  std::vector<std::pair<Key, void*>> drain() {
    std::vector<std::pair<Key, void*>> out;
    for (auto& [key, handles] : free_)
      for (void* h : handles) out.emplace_back(key, h);
    free_.clear();
    cached_ = 0;
    return out;
  }

  std::mutex mutex_;
  std::unordered_map<Key, std::vector<void*>, KeyHash> free_;
  size_t cached_ = 0;
  size_t limit_ = 0;
  bool enabled_ = true;
};

}  // namespace

void release_cached_buffers() { BufferCache::get().release_all(); }

Buffer::~Buffer() {
  if (!handle) return;
  size_t size = rounded_size(bytes);
  if (!BufferCache::get().give(backend, handle, size)) release_now(backend, handle);
}

std::shared_ptr<Buffer> allocate(BackendEntry* backend, size_t bytes) {
  auto buffer = std::make_shared<Buffer>();
  buffer->backend = backend;
  buffer->bytes = bytes;
  size_t n = rounded_size(bytes);
  buffer->handle = BufferCache::get().take(backend, n);
  if (buffer->handle) return buffer;
  if (backend) {
    ErrorSlot error;
    buffer->handle = backend->table.alloc(backend->table.self, n, &error);
    if (!buffer->handle)
      throw Error("backend '" + backend->name + "' could not allocate " + std::to_string(bytes) + " bytes: " +
                  error.message);
  } else {
    // With memory overcommit a request larger than the machine's memory may "succeed" and the
    // process be killed later while touching it: such a request is an error now.
    static const double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    if (physical > 0 && double(n) > physical)
      throw Error("cannot allocate " + std::to_string(bytes) +
                  " bytes of host memory: more than this machine has (" + std::to_string(uint64_t(physical)) +
                  " bytes)");
    buffer->handle = std::aligned_alloc(64, n);
    if (!buffer->handle) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  }
  return buffer;
}

static void check_shape(const Shape& shape) {
  if (shape.size() > LAMINA_MAX_DIMS)
    throw Error("tensor rank " + std::to_string(shape.size()) + " exceeds the maximum of " +
                std::to_string(LAMINA_MAX_DIMS));
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_to_string(shape));
    if (d > 0 && n > (int64_t(1) << 40) / d)
      throw Error("shape " + shape_to_string(shape) + " is too large (over 2^40 elements)");
    n *= d;
  }
}

Tensor make_tensor(Shape shape, BackendEntry* backend) {
  check_shape(shape);
  // A host tensor made inside a recorded training step holds values no kernel wrote (replay.hpp).
  if (LaunchRecorder* r = backend ? nullptr : active_recorder()) r->spoil();
  auto* impl = new TensorImpl;
  size_t bytes = size_t(shape_size(shape)) * sizeof(float);
  impl->shape = std::move(shape);
  impl->buffer = allocate(backend, bytes);
  return Tensor(impl, false);
}

static bool host_reachable(const Tensor& t) {
  const Buffer& b = *t.impl()->buffer;
  return !b.backend || b.backend->table.host_memory;
}

bool Tensor::is_host() const { return impl_ && host_reachable(*this); }

bool reachable(const Tensor& t, const BackendEntry& backend) {
  const Buffer& b = *t.impl()->buffer;
  return b.backend == &backend || (backend.table.host_memory && host_reachable(t));
}

Tensor on_backend(const Tensor& t, BackendEntry& backend) {
  if (reachable(t, backend)) return t;
  // Different memory: go through the host.
  std::vector<float> values = t.to_vector();
  Tensor copy = make_tensor(t.shape(), &backend);
  ErrorSlot error;
  if (backend.table.copy_in(backend.table.self, copy.impl()->buffer->handle, 0, values.data(),
                            values.size() * sizeof(float), &error) != LAMINA_OK)
    throw Error("copy to backend '" + backend.name + "' failed: " + error.message);
  return copy;
}

lamina_view view_of(const Tensor& t) {
  lamina_view v{};
  const TensorImpl& impl = *t.impl();
  const Buffer& b = *impl.buffer;
  if (!b.backend || b.backend->table.host_memory) {
    v.data = static_cast<char*>(b.handle) + impl.offset;
    v.offset = 0;
  } else {
    v.data = b.handle;
    v.offset = impl.offset;
  }
  v.ndim = int32_t(impl.shape.size());
  v.dtype = LAMINA_DTYPE_FLOAT32;
  for (size_t i = 0; i < impl.shape.size(); ++i) v.shape[i] = impl.shape[i];
  return v;
}

Tensor to_host(const Tensor& t) {
  return t.is_host() ? t : Tensor::from_vector(t.to_vector(), t.shape());
}

Tensor detached(const Tensor& t) {
  auto* impl = new TensorImpl;
  impl->shape = t.impl()->shape;
  impl->buffer = t.impl()->buffer;
  impl->offset = t.impl()->offset;
  return Tensor(impl, false);
}

// ------------------------------------------------------------------------------------------------

Tensor::Tensor(TensorImpl* impl, bool add_ref) : impl_(impl) {
  if (impl_ && add_ref) impl_->refs.fetch_add(1, std::memory_order_relaxed);
}
Tensor::Tensor(const Tensor& other) : impl_(other.impl_) {
  if (impl_) impl_->refs.fetch_add(1, std::memory_order_relaxed);
}
Tensor::Tensor(Tensor&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
Tensor& Tensor::operator=(Tensor other) noexcept {
  std::swap(impl_, other.impl_);
  return *this;
}
Tensor::~Tensor() {
  if (impl_ && impl_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete impl_;
}
TensorImpl* Tensor::release() { return std::exchange(impl_, nullptr); }

static const TensorImpl& need(const TensorImpl* impl) {
  if (!impl) throw Error("use of an empty (undefined) tensor");
  return *impl;
}

const Shape& Tensor::shape() const { return need(impl_).shape; }

int64_t Tensor::dim(int64_t axis) const {
  const Shape& s = shape();
  int64_t a = axis < 0 ? axis + int64_t(s.size()) : axis;
  if (a < 0 || a >= int64_t(s.size()))
    throw Error("axis " + std::to_string(axis) + " is out of range for shape " + shape_to_string(s));
  return s[size_t(a)];
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  if (int64_t(values.size()) != shape_size(shape))
    throw Error("Tensor::from_vector: " + std::to_string(values.size()) + " values do not fill shape " +
                shape_to_string(shape));
  Tensor t = empty_host(shape);
  if (!values.empty()) std::memcpy(t.host_data(), values.data(), values.size() * sizeof(float));
  return t;
}
Tensor Tensor::empty_host(const Shape& shape) { return make_tensor(shape, nullptr); }
Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }
Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty_host(shape);
  std::fill_n(t.host_data(), t.size(), value);
  return t;
}

float* Tensor::host_data() {
  if (!is_host()) throw Error("host_data(): tensor lives in device memory; use to_vector()");
  return reinterpret_cast<float*>(static_cast<char*>(impl_->buffer->handle) + impl_->offset);
}
const float* Tensor::host_data() const { return const_cast<Tensor*>(this)->host_data(); }

std::vector<float> Tensor::to_vector() const {
  const TensorImpl& impl = need(impl_);
  std::vector<float> out(size_t(shape_size(impl.shape)));
  if (out.empty()) return out;
  if (is_host()) {
    std::memcpy(out.data(), host_data(), out.size() * sizeof(float));
  } else {
    BackendEntry& b = *impl.buffer->backend;
    ErrorSlot error;
    if (b.table.copy_out(b.table.self, impl.buffer->handle, impl.offset, out.data(), out.size() * sizeof(float),
                         &error) != LAMINA_OK)
      throw Error("copy from backend '" + b.name + "' failed: " + error.message);
  }
  return out;
}

float Tensor::item() const {
  if (size() != 1) throw Error("item(): tensor of shape " + shape_to_string(shape()) + " has more than one value");
  return to_vector()[0];
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  const TensorImpl& impl = need(impl_);
  if (impl.shape.empty()) throw Error("slice(): a scalar has no rows");
  if (begin < 0 || end < begin || end > impl.shape[0])
    throw Error("slice(" + std::to_string(begin) + ", " + std::to_string(end) + ") is out of range for shape " +
                shape_to_string(impl.shape));
  auto* out = new TensorImpl;
  out->shape = impl.shape;
  out->shape[0] = end - begin;
  out->buffer = impl.buffer;
  int64_t row = shape_size(impl.shape) / std::max<int64_t>(impl.shape[0], 1);
  out->offset = impl.offset + size_t(begin * row) * sizeof(float);
  return Tensor(out, false);
}

bool Tensor::requires_grad() const { return need(impl_).requires_grad; }
Tensor& Tensor::set_requires_grad(bool value) {
  need(impl_);
  impl_->requires_grad = value;
  return *this;
}

// ------------------------------------------------------------------------------------------------

static void print_rec(std::ostream& out, const std::vector<float>& v, const Shape& s, size_t axis, size_t& pos,
                      int indent) {
  if (axis == s.size()) {
    out << v[pos++];
    return;
  }
  out << "[";
  for (int64_t i = 0; i < s[axis]; ++i) {
    if (i) {
      out << ",";
      if (axis + 1 < s.size()) out << "\n" << std::string(size_t(indent + 1), ' ');
      else out << " ";
    }
    if (s[axis] > 12 && i == 6 && axis + 1 == s.size()) {
      out << "...";
      pos += size_t(s[axis] - 12);
      i = s[axis] - 6 - 1;
      continue;
    }
    print_rec(out, v, s, axis + 1, pos, indent + 1);
  }
  out << "]";
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "Tensor(undefined)";
  std::vector<float> v = t.to_vector();
  std::ostringstream s;
  s << std::setprecision(6);
  size_t pos = 0;
  s << "array(";
  print_rec(s, v, t.shape(), 0, pos, 6);
  s << ", shape=" << shape_to_string(t.shape()) << ")";
  return out << s.str();
}

}  // namespace lamina
