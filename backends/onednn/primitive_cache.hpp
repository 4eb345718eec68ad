// A bounded least-recently-used cache of prepared oneDNN work: primitive descriptors, primitives,
// the reorders around them and the staging buffers they write. Creating a primitive costs far
// more than running it on small tensors (descriptor checks, JIT code generation), and a training
// loop calls the same ops with the same shapes every step, so each kernel looks its setup up here.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lamina::onednn {

// What identifies a prepared primitive: the op plus every shape and attribute baked into it. Built
// on every kernel call, so it lives on the stack: the op name is a string literal, the values an
// inline array.
struct CacheKey {
  static constexpr size_t kCapacity = 24;
  const char* op;
  std::array<int64_t, kCapacity> values{};
  size_t count = 0;

  explicit CacheKey(const char* op_name) : op(op_name) {}
  CacheKey& add(int64_t v) {
    if (count == kCapacity) throw std::length_error("onednn: primitive cache key has too many values");
    values[count++] = v;
    return *this;
  }
  CacheKey& add(double v) { return add(std::bit_cast<int64_t>(v)); }
  template <class Range>
  CacheKey& add_all(const Range& range) {
    for (auto v : range) add(int64_t(v));
    return *this;
  }
  bool operator==(const CacheKey& other) const {
    return count == other.count && std::strcmp(op, other.op) == 0 &&
           std::equal(values.begin(), values.begin() + count, other.values.begin());
  }
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const noexcept {
    uint64_t h = std::hash<std::string_view>{}(k.op);
    for (size_t i = 0; i < k.count; ++i)
      h = (h ^ uint64_t(k.values[i])) * 0x100000001B3ull + 0x9E3779B97F4A7C15ull;
    return size_t(h);
  }
};

// Not thread-safe: the backend serialises kernels that use it. Entries are shared_ptr so an
// entry a kernel holds stays alive even if a later lookup in the same kernel evicts it.
class PrimitiveCache {
 public:
  explicit PrimitiveCache(size_t capacity) : capacity_(capacity) {}

  // Returns the entry for `key`, building it with `make()` (returning shared_ptr<T>) on a miss.
  // The OpenMP team size is part of every key: oneDNN primitives must run with the team they were
  // created for, and the team changes (SerialScope, AdaptiveTeam).
  template <class T, class Make>
  std::shared_ptr<T> get(CacheKey key, Make&& make) {
    key.add(int64_t(omp_get_max_threads()));
    if (auto it = index_.find(key); it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return std::static_pointer_cast<T>(it->second->second);
    }
    std::shared_ptr<T> made = make();
    order_.emplace_front(key, made);
    index_.emplace(key, order_.begin());
    while (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return made;
  }

  size_t size() const { return order_.size(); }
  void clear() {
    index_.clear();
    order_.clear();
  }

 private:
  using Item = std::pair<CacheKey, std::shared_ptr<void>>;
  size_t capacity_;
  std::list<Item> order_;  // most recently used first
  std::unordered_map<CacheKey, std::list<Item>::iterator, CacheKeyHash> index_;
};

}  // namespace lamina::onednn
