// Replay of training steps.
//
// A small model's training step costs more in the framework's work per op (shape inference,
// tensors, autograd nodes, dispatch through the plugin tables) than in its kernels: the seed MLP's
// 23 kernel calls take about half of its step. fit() therefore records the kernel launches of a
// step (forward pass, loss and gradients). When two consecutive steps launched the same kernels
// with the same shapes and attributes on the same operands (the same parameter buffers, the batch,
// each intermediate from the same earlier launch), later steps with a batch of that shape call the
// recorded kernels directly, on their own batch. The result is the
// normal step's, bit for bit: the same kernels on the same values in the same order.
//
// A step is never replayed when it does something a list of kernel calls cannot repeat: a tensor
// created from host values inside the step (fit turns sparse labels into one-hot rows before the
// step, so those steps are replayed), a tensor copied between
// backends, an in-place update (an overwrite by `assign` through the backend's copy kernel, such as
// BatchNormalization's moving statistics, is a launch and is repeated), an op whose attributes
// change from step to step (dropout's seed),
// or when the intermediate results it would have to keep exceed kMaxBytes (kMaxDeviceBytes on a
// device backend; large models spend their time in kernels, and keeping every intermediate would
// raise their peak memory). Layer plugins cannot read tensor values, so they cannot branch on data.
// LAMINA_STEP_REPLAY=0 turns replay off.
//
// On a backend that records graphs (lamina_backend's capture functions, such as the cudnn
// backend's CUDA graphs) the recorded kernels are captured once and every later step is one graph
// launch, on batch buffers the recording owns; LAMINA_STEP_GRAPHS=0 turns that off.
#pragma once

#include "launch_recorder.hpp"

#include <lamina/tensor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace lamina {

class StepRecording;
struct RecordingDeleter {
  void operator()(StepRecording* r) const;
};
using RecordingPtr = std::unique_ptr<StepRecording, RecordingDeleter>;

// Records the launches of its scope on this thread: the recording is the thread's LaunchRecorder
// (launch_recorder.hpp), which dispatch.cpp and tensor.cpp report to.
class RecordingScope {
 public:
  explicit RecordingScope(StepRecording* recording);
  ~RecordingScope();
  RecordingScope(const RecordingScope&) = delete;
  RecordingScope& operator=(const RecordingScope&) = delete;

 private:
  LaunchRecorder* previous_;
};

// fit()'s replay state for one run of fit.
class StepReplay {
 public:
  static constexpr size_t kMaxBytes = size_t(8) << 20;  // of the step's intermediate results
  // The same on a device backend, whose caching allocator keeps a step's buffers reserved between
  // steps anyway: keeping them for the recording adds nothing there.
  static constexpr size_t kMaxDeviceBytes = size_t(512) << 20;

  StepReplay();  // enabled unless LAMINA_STEP_REPLAY=0
  ~StepReplay();

  // Whether a recorded step can run on a batch of these shapes.
  bool ready_for(const Tensor& x, const Tensor& y) const;
  // Runs the recorded kernels on x and y; pred(), loss() and gradients() then hold this step's
  // values.
  void run(const Tensor& x, const Tensor& y);
  // A recording for a normal step on x and y, or null when this run has stopped recording.
  RecordingPtr begin(const Tensor& x, const Tensor& y);
  // Keeps the recorded step when it matches the previous one (then replay is ready).
  void finish(RecordingPtr recording, const Tensor& pred, const Tensor& loss,
              const std::vector<Tensor>& gradients);

  const Tensor& pred() const;
  const Tensor& loss() const;
  const std::vector<Tensor>& gradients() const;

 private:
  struct Ready;
  bool enabled_ = true;
  int mismatches_ = 0;
  RecordingPtr previous_;
  std::unique_ptr<Ready> ready_;
};

// Steps replayed so far in this process, and those of them launched as one graph (for tests).
int64_t replayed_steps();
int64_t graph_steps();

}  // namespace lamina
