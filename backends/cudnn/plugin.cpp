// The cudnn backend: NVIDIA GPUs through cuDNN (convolutions, pooling, activations, softmax),
// cuBLAS (matmul) and its own CUDA kernels (element-wise ops, broadcasting, reductions, dropout
// masks, layout changes). Entry points, the backend table and its registration live here.
#include <cstdlib>
#include <memory>
#include <string>

#include "kernels.hpp"

#include <lamina/sdk/config.hpp>

#ifndef LAMINA_CUDA_ARCHITECTURES
#define LAMINA_CUDA_ARCHITECTURES ""
#endif

namespace lamina::cudnn {
namespace {

// Deliberately never destroyed: the process may still release tensors during exit, and CUDA's own
// teardown at exit makes destroying handles and freeing memory from static destructors unsafe.
Backend* g_backend = nullptr;

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

int configured_device = -1;  // the configuration's "device" (lamina_plugin_configure); -1 unset

// LAMINA_CUDA_DEVICE, else LAMINA_DEVICE, else the configuration, else 0; `source` names it.
int requested_device(std::string& source) {
  for (const char* name : {"LAMINA_CUDA_DEVICE", "LAMINA_DEVICE"})
    if (const char* v = std::getenv(name); v && *v) {
      source = std::string(name) + "=" + v;
      return std::atoi(v);
    }
  source = "the configuration's \"device\"";
  return configured_device < 0 ? 0 : configured_device;
}

std::string version_string(int v, int major_div, int minor_div, int minor_mod) {
  return std::to_string(v / major_div) + "." + std::to_string(v / minor_div % minor_mod);
}

// Usable when the CUDA driver sees a device whose architecture this build has code for, and a tiny
// kernel runs there. Preferred over the CPU backends (onednn scores 100).
int32_t score(std::string& why) {
  int count = -1;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  // The count is left unwritten when the call fails (no driver): check the code first.
  if (rc != cudaSuccess) {
    why = "no usable CUDA device: cudaGetDeviceCount returned " + std::to_string(int(rc)) + " (" +
          cudaGetErrorString(rc) + ")";
    return 0;
  }
  if (count <= 0) {
    why = "no usable CUDA device: the CUDA driver reports no GPU";
    return 0;
  }
  std::string source;
  const int device = requested_device(source);
  if (device < 0 || device >= count) {
    why = "no usable CUDA device: " + source + " asks for device " + std::to_string(device) + " but there are " +
          std::to_string(count) + " device(s)";
    return 0;
  }
  cudaDeviceProp prop{};
  if (cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) {
    why = std::string("no usable CUDA device: cannot read device ") + std::to_string(device) +
          "'s properties (" + cudaGetErrorString(e) + ")";
    return 0;
  }
  const int arch = prop.major * 10 + prop.minor;
  const int lowest = lowest_architecture(LAMINA_CUDA_ARCHITECTURES);
  if (lowest && arch < lowest) {
    why = std::string("no usable CUDA device: ") + prop.name + " is sm_" + std::to_string(arch) +
          ", and this build has code for CUDA architectures " + LAMINA_CUDA_ARCHITECTURES +
          " only (configure with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(arch) + ")";
    return 0;
  }
  if (cudnnGetVersion() / 10000 != CUDNN_MAJOR) {
    why = "cuDNN " + std::to_string(cudnnGetVersion()) + " is loaded, but this build needs cuDNN " +
          std::to_string(CUDNN_MAJOR) + ".x";
    return 0;
  }
  if (std::string probe = probe_device(device); !probe.empty()) {
    why = std::string("no usable CUDA device: ") + prop.name + " cannot run this build's kernels: " + probe;
    return 0;
  }
  return 200;
}

std::string describe_device(const Backend& b) {
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, b.device), "reading the device's properties");
  int driver = 0, runtime = 0, cublas = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cublasGetVersion(b.cublas, &cublas);
  const size_t cudnn = cudnnGetVersion();
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB", double(prop.totalGlobalMem) / double(1 << 30));
  std::string d = std::string(prop.name) + " (GPU " + std::to_string(b.device) + ", sm_" +
                  std::to_string(prop.major) + std::to_string(prop.minor) + ", " + memory +
                  "), CUDA driver " + version_string(driver, 1000, 10, 100) + ", runtime " +
                  version_string(runtime, 1000, 10, 100) + ", cuDNN " + std::to_string(cudnn / 10000) + "." +
                  std::to_string(cudnn / 100 % 100) + "." + std::to_string(cudnn % 100) + ", cuBLAS " +
                  std::to_string(cublas / 10000) + "." + std::to_string(cublas / 100 % 100);
  if (b.policy.allow_tf32) d += ", TF32 allowed";
  return d;
}

void create_backend() {
  auto b = std::make_unique<Backend>();
  std::string source;
  b->device = requested_device(source);
  check_cuda(cudaSetDevice(b->device), "selecting the device");
  check_cuda(cudaDeviceGetAttribute(&b->sm_count, cudaDevAttrMultiProcessorCount, b->device),
             "reading the multiprocessor count");
  check_cuda(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking), "creating the stream");
  check_cudnn(cudnnCreate(&b->cudnn), "creating the cuDNN handle");
  check_cudnn(cudnnSetStream(b->cudnn, b->stream), "setting cuDNN's stream");
  check_cublas(cublasCreate(&b->cublas), "creating the cuBLAS handle");
  check_cublas(cublasSetStream(b->cublas, b->stream), "setting cuBLAS' stream");

  // LAMINA_CUDNN_TF32=1 trades float precision (about 10 mantissa bits in products) for tensor-core
  // speed in convolutions and matmuls; off by default so results match the other backends.
  b->policy.allow_tf32 = env_flag("LAMINA_CUDNN_TF32");
  b->policy.deterministic_only = env_flag("LAMINA_CUDNN_DETERMINISTIC");
  b->find_algorithms = env_flag("LAMINA_CUDNN_FIND");
  b->sync_each_kernel = env_flag("LAMINA_CUDNN_SYNC");
  b->graphs = env_flag("LAMINA_CUDNN_GRAPHS");
  check_cublas(
      cublasSetMathMode(b->cublas, b->policy.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
      "setting cuBLAS' math mode");
  b->description = describe_device(*b);
  g_backend = b.release();
}

void init(const lamina_host* host) {
  if (!g_backend) {
    try {
      create_backend();
    } catch (const std::exception& e) {
      throw sdk::Error(std::string("cudnn backend: ") + e.what());
    }
  }
  lamina_backend table = memory_table(*g_backend);
  table.device = g_backend->description.c_str();
  if (g_backend->graphs) add_graph_functions(table);
  sdk::register_backend<Kernels>(host, table);
}

}  // namespace

// {"device": D}; LAMINA_CUDA_DEVICE and LAMINA_DEVICE override it.
void configure(const std::string& settings_json) {
  sdk::Config settings(settings_json, "cudnn settings");
  settings.only_keys({"device"});
  configured_device = int(settings.get_int("device", -1));
  if (settings.has("device") && configured_device < 0) settings.fail("'device' must be an index (0, 1, ...)");
}

}  // namespace lamina::cudnn

LAMINA_PLUGIN(
    "cudnn", "0.1.0", LAMINA_KIND_BACKEND,
    "CUDA backend: cuDNN convolutions, pooling, activations and softmax, cuBLAS matmul, own CUDA kernels",
    lamina::cudnn::init, lamina::cudnn::score)
LAMINA_PLUGIN_CONFIGURE(lamina::cudnn::configure)
