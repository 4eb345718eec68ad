// The hook through which kernel launches reach a listener without the runtime depending on it:
// dispatch.cpp and tensor.cpp report to the active recorder of their thread; replay.cpp's step
// recordings are the recorders, installed by RecordingScope (replay.hpp).
#pragma once

#include <lamina/lamina_plugin.h>
#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lamina {

struct OpDef;         // op_registry.hpp
struct BackendEntry;  // backend_entry.hpp

class LaunchRecorder {
 public:
  // A kernel ran: `op` on `backend` with these views and attributes, plus one integer attribute the
  // core added (`extra_name`, when not null). The tensors are the operands, to keep alive.
  virtual void launched(const OpDef& op, BackendEntry& backend, const lamina_view* inputs, size_t n_inputs,
                        const lamina_view* outputs, size_t n_outputs, const Attributes& attrs,
                        const char* extra_name, int64_t extra_value, const std::vector<Tensor>& input_tensors,
                        const std::vector<Tensor>& output_tensors) = 0;
  // Something a list of kernel launches cannot repeat happened: a tensor filled from host values, a
  // copy between backends, an in-place update, an overwrite through the host.
  virtual void spoil() = 0;

 protected:
  ~LaunchRecorder() = default;
};

// This thread's recorder, or null.
LaunchRecorder* active_recorder();
// Makes `recorder` (or none) this thread's recorder; returns the previous one.
LaunchRecorder* set_active_recorder(LaunchRecorder* recorder);

}  // namespace lamina
