// Op attributes as the C ABI carries them (lamina_attrs), for kernels, plugin ops and replay.
// Lowest layer of the core's runtime: depends on the public headers only.
#pragma once

#include <lamina/lamina_plugin.h>
#include <lamina/ops.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lamina {

// Writes `a` (plus one integer attribute `extra_name`, when given, which wins over one of that name)
// as the C ABI carries attributes into out[0..a.size()]; the names and texts point into `a`.
// Returns the count written.
size_t to_c_attrs(const Attributes& a, const char* extra_name, int64_t extra_value, lamina_attr* out);

// Attributes as the C ABI carries them. Ops have a handful of attributes, so they live on the stack;
// `extra` appends one integer attribute the core adds for the kernel (reduce_sum's keepdims).
class CAttrs {
 public:
  explicit CAttrs(const Attributes& a, const char* extra_name = nullptr, int64_t extra_value = 0) {
    size_t n = a.size() + (extra_name ? 1 : 0);
    lamina_attr* out = small_.data();
    if (n > small_.size()) {
      big_.resize(n);
      out = big_.data();
    }
    view_ = {int32_t(to_c_attrs(a, extra_name, extra_value, out)), out};
  }
  const lamina_attrs* view() const { return &view_; }

 private:
  std::array<lamina_attr, 8> small_;
  std::vector<lamina_attr> big_;
  lamina_attrs view_{};
};

}  // namespace lamina
