// gather and gather_backward (Embedding's lookup and its scatter-add gradient): the SDK's host
// loops, entered in this backend's kernel table as they are (docs/ops.md, "Lookup").
#include <lamina/sdk/gather.hpp>

#include "kernels.hpp"

namespace lamina::reference {

static const sdk::KernelEntries<Kernels> gather_kernels(sdk::gather::host::kKernels);

}  // namespace lamina::reference
