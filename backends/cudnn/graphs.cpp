// CUDA graphs for the cudnn backend (lamina_backend's capture functions): step replay
// (core/src/replay.cpp) captures a replayed training step once and then launches it as one graph,
// instead of a few dozen kernel launches, each with cuDNN's and cuBLAS' own host work.
//
// The capture runs on the backend's stream in relaxed mode, so a cache miss of the allocator
// (cudaMalloc) may happen inside it. The blocks the step's kernels take for themselves (scratch
// buffers, the cuDNN workspace) would go back to the cache when each kernel returns; during a
// capture they are given to the graph instead (Backend::graph_blocks), because every launch of
// the graph writes them again. The capture also starts on a workspace of its own, so that a later
// kernel growing the shared workspace cannot free memory the graph uses. A graph's blocks return to
// the cache when the graph is released, after the work queued before that has run.
//
// Off unless LAMINA_CUDNN_GRAPHS=1: measured on a GPU only when tests/gpu/run.sh has run it.
#include <memory>
#include <string>
#include <vector>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

struct StepGraph {
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> blocks;  // scratch and workspace of the captured kernels
};

// The capture in progress (one at a time: the backend has one stream).
struct Capture {
  std::vector<void*> blocks;
  void* saved_workspace = nullptr;
  size_t saved_workspace_bytes = 0;
};
std::unique_ptr<Capture> g_capture;

Backend& backend_of(void* self) {
  return *static_cast<Backend*>(self);
}

// Ends the capture's hold on the backend: its own workspace joins its blocks, the shared one is back.
std::vector<void*> finish_capture(Backend& backend) {
  std::unique_ptr<Capture> capture = std::move(g_capture);
  backend.graph_blocks = nullptr;
  if (backend.workspace) capture->blocks.push_back(backend.workspace);
  backend.workspace = capture->saved_workspace;
  backend.workspace_bytes = capture->saved_workspace_bytes;
  return std::move(capture->blocks);
}

lamina_status capture_begin(void* self, lamina_error* error) {
  return sdk::guarded(error, [&] {
    Backend& backend = backend_of(self);
    std::lock_guard lock(backend.mutex);
    if (backend.sync_each_kernel)
      throw sdk::Error(
          "cudnn backend: LAMINA_CUDNN_SYNC=1 waits after every kernel, which a graph cannot hold");
    if (g_capture) throw sdk::Error("cudnn backend: a graph capture is already running");
    check_cuda(cudaSetDevice(backend.device), "cudnn backend: selecting the device");
    check_cuda(cudaStreamBeginCapture(backend.stream, cudaStreamCaptureModeRelaxed),
               "cudnn backend: starting a graph capture");
    g_capture = std::make_unique<Capture>();
    g_capture->saved_workspace = backend.workspace;
    g_capture->saved_workspace_bytes = backend.workspace_bytes;
    backend.workspace = nullptr;
    backend.workspace_bytes = 0;
    backend.graph_blocks = &g_capture->blocks;
  });
}

void* capture_end(void* self, lamina_error* error) {
  Backend& backend = backend_of(self);
  std::lock_guard lock(backend.mutex);
  if (!g_capture) {
    sdk::write_error(error, "cudnn backend: capture_end without capture_begin");
    return nullptr;
  }
  std::vector<void*> blocks = finish_capture(backend);
  cudaGraph_t graph = nullptr;
  cudaError_t status = cudaStreamEndCapture(backend.stream, &graph);
  auto fail = [&](cudaError_t e, const char* what) -> void* {
    (void)cudaGetLastError();  // the failed capture's error is reported here, not by the next kernel
    if (graph) (void)cudaGraphDestroy(graph);
    for (void* b : blocks) backend.allocator.release(b);  // the capture never ran
    sdk::write_error(error, std::string("cudnn backend: ") + what + ": CUDA error " + cudaGetErrorName(e) +
                                " (" + cudaGetErrorString(e) + ")");
    return nullptr;
  };
  if (status != cudaSuccess || !graph) return fail(status, "the step could not be captured as a graph");
  auto step = std::make_unique<StepGraph>();
  status = cudaGraphInstantiate(&step->exec, graph, 0);
  if (status != cudaSuccess) return fail(status, "the captured graph could not be instantiated");
  (void)cudaGraphDestroy(graph);  // the executable graph keeps what it needs
  step->blocks = std::move(blocks);
  return step.release();
}

lamina_status launch_graph(void* self, void* graph, lamina_error* error) {
  return sdk::guarded(error, [&] {
    Backend& backend = backend_of(self);
    std::lock_guard lock(backend.mutex);
    check_cuda(cudaSetDevice(backend.device), "cudnn backend: selecting the device");
    check_cuda(cudaGraphLaunch(static_cast<StepGraph*>(graph)->exec, backend.stream),
               "cudnn backend: launching a captured step");
  });
}

void release_graph(void* self, void* graph) {
  Backend& backend = backend_of(self);
  std::unique_ptr<StepGraph> step(static_cast<StepGraph*>(graph));
  std::lock_guard lock(backend.mutex);
  (void)cudaSetDevice(backend.device);
  // The graph's last launch may still be queued: its blocks go back to the cache only after it.
  (void)cudaStreamSynchronize(backend.stream);
  (void)cudaGraphExecDestroy(step->exec);
  for (void* b : step->blocks) backend.allocator.release(b);
}

}  // namespace

void add_graph_functions(lamina_backend& table) {
  table.capture_begin = capture_begin;
  table.capture_end = capture_end;
  table.launch_graph = launch_graph;
  table.release_graph = release_graph;
}

}  // namespace lamina::cudnn
