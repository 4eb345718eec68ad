// This thread's launch recorder (launch_recorder.hpp).
#include "launch_recorder.hpp"

#include <utility>

namespace lamina {

namespace {

thread_local LaunchRecorder* g_recorder = nullptr;

}  // namespace

LaunchRecorder* active_recorder() {
  return g_recorder;
}

LaunchRecorder* set_active_recorder(LaunchRecorder* recorder) {
  return std::exchange(g_recorder, recorder);
}

}  // namespace lamina
