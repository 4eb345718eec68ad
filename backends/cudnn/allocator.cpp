// The caching device allocator; see allocator.hpp.
#include "allocator.hpp"

#include <algorithm>

namespace lamina::cudnn {

namespace {
constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;
}  // namespace

CachingAllocator::~CachingAllocator() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

size_t CachingAllocator::size_class(size_t bytes) {
  // No device has this much memory; returned as is, so that the driver refuses it rather than the
  // rounding below overflowing.
  if (bytes > (size_t(1) << 60)) return bytes;
  if (bytes <= kSmallLimit)
    return std::max<size_t>(kSmallStep, (bytes + kSmallStep - 1) / kSmallStep * kSmallStep);
  // The power of two below `bytes`, then its quarter steps.
  size_t power = kSmallLimit;
  while (power <= bytes / 2) power *= 2;
  const size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = size_class(bytes);
  std::lock_guard lock(mutex_);
  void* block = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    block = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= size;
    --stats_.cached_blocks;
    ++stats_.hits;
  } else {
    ++stats_.misses;
    block = raw_.allocate(size);
    if (!block && stats_.cached_blocks > 0) {
      // Cached blocks of other classes may be what the device lacks: give them back and retry.
      ++stats_.flushes;
      flush_locked();
      block = raw_.allocate(size);
    }
    if (!block) return nullptr;
    stats_.reserved_bytes += size;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  }
  in_use_.emplace(block, size);
  stats_.in_use_bytes += size;
  ++stats_.in_use_blocks;
  return block;
}

bool CachingAllocator::release(void* block) {
  std::lock_guard lock(mutex_);
  auto it = in_use_.find(block);
  if (it == in_use_.end()) return false;
  const size_t size = it->second;
  in_use_.erase(it);
  stats_.in_use_bytes -= size;
  --stats_.in_use_blocks;
  free_[size].push_back(block);
  stats_.cached_bytes += size;
  ++stats_.cached_blocks;
  return true;
}

void CachingAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

void CachingAllocator::flush_locked() {
  if (stats_.cached_blocks == 0) return;
  raw_.synchronize();
  for (auto& [size, blocks] : free_) {
    for (void* block : blocks) raw_.free(block);
    stats_.reserved_bytes -= size * blocks.size();
  }
  free_.clear();
  stats_.cached_bytes = 0;
  stats_.cached_blocks = 0;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

size_t CachingAllocator::block_size(void* block) const {
  std::lock_guard lock(mutex_);
  auto it = in_use_.find(block);
  return it == in_use_.end() ? 0 : it->second;
}

}  // namespace lamina::cudnn
