// The reference backend: what its source files share.
//
// Kernels are plain loops over contiguous row-major float32 views, accumulating in double. They are
// the oracle the other backends are tested against, so they favour the obvious formulation; the only
// concession to speed is loop order (the innermost loop runs over a contiguous axis). The checks of
// their arguments and the window arithmetic are the SDK's (lamina/sdk/backend.hpp, geometry.hpp).
#pragma once

#include <lamina/sdk/geometry.hpp>

#include <cmath>
#include <cstdint>

namespace lamina::reference {

using namespace sdk;  // the SDK's checks and geometry read as this backend's own

// The backend keeps no state and runs each kernel as it is called.
struct Kernels : sdk::KernelPolicy {
  static constexpr const char* name = "reference";
};

// The activation of the fused ops, in double like every reference computation.
inline double activate(sdk::Activation act, double z) {
  switch (act) {
    case sdk::Activation::relu: return z > 0.0 ? z : 0.0;
    case sdk::Activation::sigmoid: return 1.0 / (1.0 + std::exp(-z));
    case sdk::Activation::tanh: return std::tanh(z);
    case sdk::Activation::linear: break;
  }
  return z;
}

}  // namespace lamina::reference

// Defines the kernel of op `name` (a function of that name) with a body operating on `args`. Use
// inside namespace lamina::reference.
#define REFERENCE_KERNEL(name) LAMINA_BACKEND_KERNEL(::lamina::reference::Kernels, name, #name)
