// The recorded graph and the grad mode. dispatch.cpp records a Node for every differentiable op it
// runs while recording is on; gradients() (lamina/ops.hpp, autograd.cpp) walks the graph and runs
// the ops' backward rules through the ops API.
// Below dispatch: depends on the public headers only (OpDef is only pointed to).
#pragma once

#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <cstdint>
#include <vector>

namespace lamina {

struct OpDef;

// A recorded op application, for the backward pass.
struct Node {
  const OpDef* op = nullptr;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;  // detached views (no grad_fn), to avoid reference cycles
  Attributes attrs;
  uint64_t sequence = 0;  // creation order, for a topological order of the backward pass
};

// Whether `t` takes part in the graph: a leaf that requires a gradient or an op's output.
bool needs_grad(const Tensor& t);

// Records `op` applied to `inputs` as the producer of `outputs`, when an input needs a gradient.
// The caller checks grad_enabled() and op.backward.
void record_node(const OpDef& op, const std::vector<Tensor>& inputs, const Attributes& attrs,
                 std::vector<Tensor>& outputs);

// Records ops for autograd inside a backward rule (gradients() turns recording off).
class RecordingGuard {
 public:
  RecordingGuard();
  ~RecordingGuard();
  RecordingGuard(const RecordingGuard&) = delete;
  RecordingGuard& operator=(const RecordingGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace lamina
