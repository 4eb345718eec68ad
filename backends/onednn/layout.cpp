// Layout ops (concat, slice, slice_backward, pad, transpose): the SDK's host copies, entered in this
// backend's kernel table as they are (docs/ops.md, "Layout").
#include <lamina/sdk/layout.hpp>

#include "kernels.hpp"

namespace lamina::onednn {

static const sdk::KernelEntries<Kernels> layout_kernels(sdk::layout::host::kKernels);

}  // namespace lamina::onednn
