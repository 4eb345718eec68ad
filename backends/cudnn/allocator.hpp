// The cudnn backend's caching device allocator.
//
// A training step allocates and frees the same few dozen tensor sizes over and over; cudaMalloc and
// cudaFree cost tens of microseconds each and cudaFree synchronises the device. So freed blocks are
// kept on free lists, one per size class, and handed out again for any request of the same class.
//
// Reuse is safe without events because the backend runs all device work on one stream: a block freed
// by the host while kernels that use it are still queued is handed out only to work queued after
// them on the same stream.
//
// The allocator gets raw memory through RawMemory (cudaMalloc/cudaFree in the plugin, a fake in the
// tests), so its bookkeeping is tested on any machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace lamina::cudnn {

class RawMemory {
 public:
  virtual ~RawMemory() = default;
  // nullptr when the device is out of memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void free(void* block) = 0;
  // Waits until no queued device work can still use a freed block, before blocks go back to the
  // driver.
  virtual void synchronize() {}
};

struct AllocatorStats {
  size_t in_use_bytes = 0;    // class sizes of the blocks handed out
  size_t cached_bytes = 0;    // class sizes of the blocks on the free lists
  size_t reserved_bytes = 0;  // in use + cached: what the allocator holds from the driver
  size_t peak_reserved_bytes = 0;
  size_t in_use_blocks = 0;
  size_t cached_blocks = 0;
  uint64_t hits = 0;     // requests served from a free list
  uint64_t misses = 0;   // requests that went to the driver
  uint64_t flushes = 0;  // times the cache was emptied to retry a failed driver allocation
};

class CachingAllocator {
 public:
  explicit CachingAllocator(RawMemory& raw) : raw_(raw) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;
  // Returns the cached blocks to the driver; blocks still in use are the caller's leak.
  ~CachingAllocator();

  // The size actually reserved for a request of `bytes`: multiples of 512 bytes up to 1 MiB, then
  // four classes per power of two (1, 1.25, 1.5, 1.75 × 2^k), so a block is at most 25 % larger
  // than the request and a few dozen classes cover every size a model uses.
  static size_t size_class(size_t bytes);

  // A block of at least `bytes` (a class-sized one), or nullptr when the driver has no memory even
  // after the cache was returned to it.
  void* allocate(size_t bytes);
  // Puts a block back on its free list; false (and nothing done) for a pointer this allocator did
  // not hand out or that was already released.
  bool release(void* block);
  // Returns every cached block to the driver.
  void empty_cache();

  AllocatorStats stats() const;
  // The class size of a block in use, 0 for an unknown pointer.
  size_t block_size(void* block) const;

 private:
  void flush_locked();

  RawMemory& raw_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> in_use_;   // block → class size
  std::map<size_t, std::vector<void*>> free_;  // class size → cached blocks
  AllocatorStats stats_;
};

}  // namespace lamina::cudnn
