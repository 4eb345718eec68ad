// The opencl backend's entry points and its table: every op of docs/ops.md on an OpenCL 1.2
// device, GEMM through CLBlast and everything else as OpenCL C kernels of its own. Here too: device
// selection, the backend's state (context, queue, compiled programs) and kernel launches.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels.hpp"

#include <lamina/sdk/config.hpp>

namespace lamina::opencl {

std::string cl_error_name(cl_int status) {
  switch (status) {
#define NAME(code) \
  case code:       \
    return #code;
    NAME(CL_DEVICE_NOT_FOUND)
    NAME(CL_DEVICE_NOT_AVAILABLE)
    NAME(CL_COMPILER_NOT_AVAILABLE)
    NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    NAME(CL_OUT_OF_RESOURCES)
    NAME(CL_OUT_OF_HOST_MEMORY)
    NAME(CL_MEM_COPY_OVERLAP)
    NAME(CL_BUILD_PROGRAM_FAILURE)
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    NAME(CL_INVALID_VALUE)
    NAME(CL_INVALID_DEVICE_TYPE)
    NAME(CL_INVALID_PLATFORM)
    NAME(CL_INVALID_DEVICE)
    NAME(CL_INVALID_CONTEXT)
    NAME(CL_INVALID_COMMAND_QUEUE)
    NAME(CL_INVALID_MEM_OBJECT)
    NAME(CL_INVALID_BUILD_OPTIONS)
    NAME(CL_INVALID_PROGRAM)
    NAME(CL_INVALID_PROGRAM_EXECUTABLE)
    NAME(CL_INVALID_KERNEL_NAME)
    NAME(CL_INVALID_KERNEL)
    NAME(CL_INVALID_ARG_INDEX)
    NAME(CL_INVALID_ARG_VALUE)
    NAME(CL_INVALID_ARG_SIZE)
    NAME(CL_INVALID_KERNEL_ARGS)
    NAME(CL_INVALID_WORK_DIMENSION)
    NAME(CL_INVALID_WORK_GROUP_SIZE)
    NAME(CL_INVALID_WORK_ITEM_SIZE)
    NAME(CL_INVALID_GLOBAL_OFFSET)
    NAME(CL_INVALID_EVENT_WAIT_LIST)
    NAME(CL_INVALID_OPERATION)
    NAME(CL_INVALID_BUFFER_SIZE)
    NAME(CL_INVALID_GLOBAL_WORK_SIZE)
#undef NAME
    case -1001:
      return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
      return "OpenCL error " + std::to_string(status);
  }
}

// ------------------------------------------------------------------------------------------------
// Device selection

namespace {

std::string platform_info(cl_platform_id platform, cl_platform_info what) {
  size_t size = 0;
  if (clGetPlatformInfo(platform, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return "";
  std::string s(size, '\0');
  if (clGetPlatformInfo(platform, what, size, s.data(), nullptr) != CL_SUCCESS) return "";
  return s.c_str();  // drops the terminating NUL
}

std::string device_info(cl_device_id device, cl_device_info what) {
  size_t size = 0;
  if (clGetDeviceInfo(device, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return "";
  std::string s(size, '\0');
  if (clGetDeviceInfo(device, what, size, s.data(), nullptr) != CL_SUCCESS) return "";
  return s.c_str();
}

template <class T>
T device_value(cl_device_id device, cl_device_info what) {
  T value{};
  clGetDeviceInfo(device, what, sizeof(T), &value, nullptr);
  return value;
}

std::vector<cl_device_id> devices_of(cl_platform_id platform) {
  cl_uint n = 0;
  if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, nullptr, &n) != CL_SUCCESS || n == 0) return {};
  std::vector<cl_device_id> out(n);
  if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, n, out.data(), nullptr) != CL_SUCCESS) return {};
  return out;
}

// A non-negative index from environment variable `name`: -1 when unset, -2 when malformed.
int env_index(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return -1;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 1 << 20) return -2;
  return int(value);
}

// "OpenCL 1.2 ..." → 102; 0 when unreadable.
int version_number(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "OpenCL %d.%d", &major, &minor) != 2) return 0;
  return major * 100 + minor;
}

// From the user configuration (lamina_plugin_configure); -1 when not set there.
int configured_platform = -1;
int configured_device = -1;

// The index to use: the environment variable first, then the configuration; -1 when neither sets
// it, -2 when the variable is malformed. `source` says where it came from, for messages.
int requested_index(const char* variable, int configured, const char* setting, std::string& source) {
  int index = env_index(variable);
  if (index == -1 && configured >= 0) {
    source = std::string("the configuration's \"") + setting + "\": " + std::to_string(configured);
    return configured;
  }
  if (index >= 0) source = std::string(variable) + "=" + std::to_string(index);
  return index;
}

}  // namespace

// {"platform": P, "device": D}, both optional; the environment overrides them.
void configure(const std::string& settings_json) {
  sdk::Config settings(settings_json, "opencl settings");
  settings.only_keys({"platform", "device"});
  auto index = [&](const char* key) {
    int64_t value = settings.get_int(key, -1);
    if (settings.has(key) && (value < 0 || value > 1 << 20))
      settings.fail(std::string("'") + key + "' must be an index (0, 1, ...), got " + std::to_string(value));
    return int(value);
  };
  configured_platform = index("platform");
  configured_device = index("device");
}

bool choose_device(DeviceChoice& out, std::string& why) {
  cl_uint n_platforms = 0;
  cl_int status = clGetPlatformIDs(0, nullptr, &n_platforms);
  if (status == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (status == CL_SUCCESS && n_platforms == 0)) {
    why =
        "no OpenCL platform is installed (no ICD in /etc/OpenCL/vendors; on Debian: apt-get install "
        "pocl-opencl-icd for the CPU, or a GPU vendor's ICD)";
    return false;
  }
  if (status != CL_SUCCESS) {
    why = "the OpenCL ICD loader cannot list platforms: " + cl_error_name(status);
    return false;
  }
  std::vector<cl_platform_id> platforms(n_platforms);
  clGetPlatformIDs(n_platforms, platforms.data(), nullptr);
  auto platform_list = [&] {
    std::string s;
    for (cl_uint i = 0; i < n_platforms; ++i)
      s += (i ? ", " : "") + std::to_string(i) + " '" + platform_info(platforms[i], CL_PLATFORM_NAME) + "'";
    return s;
  };

  std::string platform_source;
  int p = requested_index("LAMINA_OPENCL_PLATFORM", configured_platform, "platform", platform_source);
  if (p == -2) {
    why = std::string("LAMINA_OPENCL_PLATFORM='") + std::getenv("LAMINA_OPENCL_PLATFORM") +
          "' is not a platform index (platforms: " + platform_list() + ")";
    return false;
  }
  if (p >= int(n_platforms)) {
    why = platform_source + " asks for platform " + std::to_string(p) + " but there are " +
          std::to_string(n_platforms) + " platform(s): " + platform_list();
    return false;
  }
  if (p < 0) {  // the first platform with a device
    for (cl_uint i = 0; i < n_platforms && p < 0; ++i)
      if (!devices_of(platforms[i]).empty()) p = int(i);
    if (p < 0) {
      why = "no OpenCL platform has a device (platforms: " + platform_list() + ")";
      return false;
    }
  }
  std::vector<cl_device_id> devices = devices_of(platforms[size_t(p)]);
  const std::string platform_name = platform_info(platforms[size_t(p)], CL_PLATFORM_NAME);
  if (devices.empty()) {
    why = "OpenCL platform " + std::to_string(p) + " '" + platform_name + "' has no device";
    return false;
  }
  std::string device_source;
  int d = requested_index("LAMINA_DEVICE", configured_device, "device", device_source);
  if (d == -2) {
    why = std::string("LAMINA_DEVICE='") + std::getenv("LAMINA_DEVICE") + "' is not a device index";
    return false;
  }
  if (d < 0) d = 0;
  if (d >= int(devices.size())) {
    why = device_source + " asks for device " + std::to_string(d) + " but OpenCL platform " +
          std::to_string(p) + " '" + platform_name + "' has " + std::to_string(devices.size()) + " device(s)";
    return false;
  }

  cl_device_id device = devices[size_t(d)];
  const std::string device_name = device_info(device, CL_DEVICE_NAME);
  const std::string where = "OpenCL device " + std::to_string(d) + " '" + device_name + "' of platform " +
                            std::to_string(p) + " '" + platform_name + "'";
  if (!device_value<cl_bool>(device, CL_DEVICE_AVAILABLE)) {
    why = where + " is not available";
    return false;
  }
  if (!device_value<cl_bool>(device, CL_DEVICE_COMPILER_AVAILABLE)) {
    why = where + " has no OpenCL C compiler, and this backend compiles its kernels at run time";
    return false;
  }
  const std::string version = device_info(device, CL_DEVICE_VERSION);
  if (version_number(version) < 102) {
    why = where + " implements '" + version + "'; this backend needs OpenCL 1.2";
    return false;
  }

  out.platform = platforms[size_t(p)];
  out.device = device;
  out.platform_index = p;
  out.device_index = d;
  out.platform_name = platform_name;
  out.device_name = device_name;
  out.type = device_value<cl_device_type>(device, CL_DEVICE_TYPE);
  const auto units = device_value<cl_uint>(device, CL_DEVICE_MAX_COMPUTE_UNITS);
  const auto memory = device_value<cl_ulong>(device, CL_DEVICE_GLOBAL_MEM_SIZE);
  out.description = device_name + " (" + platform_name + ", " +
                    device_info(device, CL_DEVICE_OPENCL_C_VERSION) + "), platform " + std::to_string(p) +
                    " device " + std::to_string(d) + ", " + std::to_string(units) + " compute units, " +
                    std::to_string(memory >> 20) + " MiB";
  return true;
}

// ------------------------------------------------------------------------------------------------
// The backend's state

Backend::Backend(const DeviceChoice& choice)
    : device(choice.device), device_name(choice.device_name), description(choice.description) {
  cl_int status = CL_SUCCESS;
  context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &status);
  check_cl(status, ("clCreateContext for " + choice.device_name).c_str());
  queue = clCreateCommandQueue(context, device, 0, &status);  // in order, no profiling
  check_cl(status, "clCreateCommandQueue");
  max_alloc = device_value<cl_ulong>(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
  is_cpu = (choice.type & CL_DEVICE_TYPE_CPU) != 0;
  is_pocl = choice.platform_name.find("Portable Computing Language") != std::string::npos;
  // The core's profiler times each kernel call; work left running on the queue would be billed to
  // whichever later call waits for it.
  wait_per_kernel = std::getenv("LAMINA_PROFILE") != nullptr;
}

std::string base_build_options() {
  std::string options = "-cl-std=CL1.2";
  if (const char* extra = std::getenv("LAMINA_OPENCL_BUILD_OPTIONS"); extra && *extra)
    options += std::string(" ") + extra;
  return options;
}

namespace {

// The part of a build log worth putting in an error message: its error lines when it has any.
std::string log_excerpt(const std::string& log, size_t budget) {
  std::string errors;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    if (line.find("error") != std::string::npos) errors += line + "\n";
    start = end + 1;
  }
  std::string s = errors.empty() ? log : errors;
  if (s.size() > budget) s = s.substr(0, budget) + "...";
  return s;
}

}  // namespace

cl_kernel Backend::kernel(const char* family, const char* source, const std::string& options,
                          const char* name) {
  const std::string all_options = base_build_options() + options;
  const std::string key = std::string(family) + '\n' + all_options;
  auto it = programs_.find(key);
  if (it == programs_.end()) {
    cl_int status = CL_SUCCESS;
    cl_program program = clCreateProgramWithSource(context, 1, &source, nullptr, &status);
    check_cl(status, "clCreateProgramWithSource");
    const auto start = std::chrono::steady_clock::now();
    status = clBuildProgram(program, 1, &device, all_options.c_str(), nullptr, nullptr);
    if (status != CL_SUCCESS) {
      size_t size = 0;
      clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size);
      std::string log(size, '\0');
      if (size) clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
      log = log.c_str();
      clReleaseProgram(program);
      const std::string what = std::string("building the '") + family + "' kernels with options '" +
                               all_options + "' failed (" + cl_error_name(status) + ")";
      if (sdk::host_table()) {
        constexpr size_t kMost = 16384;  // a log of thousands of lines says no more than its start
        const std::string shown =
            log.size() > kMost ? log.substr(0, kMost) + "\n[... build log truncated]" : log;
        sdk::host().log(2, ("opencl: " + what + "; build log:\n" + shown).c_str());
      }
      throw sdk::Error(what + "; build log: " + log_excerpt(log, 480));
    }
    if (sdk::host_table()) {  // LAMINA_VERBOSE shows these: where a run's first seconds go
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      char line[64];
      std::snprintf(line, sizeof(line), " in %.0f ms", ms);
      sdk::host().log(0,
                      ("opencl: built the '" + std::string(family) + "' kernels" + options + line).c_str());
    }
    it = programs_.emplace(key, Program{program, {}}).first;
  }
  Program& p = it->second;
  auto k = p.kernels.find(name);
  if (k == p.kernels.end()) {
    cl_int status = CL_SUCCESS;
    cl_kernel kernel = clCreateKernel(p.program, name, &status);
    check_cl(status, (std::string("clCreateKernel '") + name + "'").c_str());
    k = p.kernels.emplace(name, kernel).first;
  }
  return k->second;
}

cl_mem Backend::scratch(int slot, size_t bytes) {
  cl_mem& buffer = scratch_[slot];
  size_t& size = scratch_bytes_[slot];
  if (bytes > size) {
    if (buffer) clReleaseMemObject(buffer);  // freed once the work using it has finished
    buffer = nullptr;
    size = 0;
    if (bytes > max_alloc)
      throw sdk::Error("needs a scratch buffer of " + std::to_string(bytes >> 20) +
                       " MiB, more than the device's CL_DEVICE_MAX_MEM_ALLOC_SIZE");
    cl_int status = CL_SUCCESS;
    buffer = clCreateBuffer(context, CL_MEM_READ_WRITE, bytes, nullptr, &status);
    check_cl(status, "clCreateBuffer (scratch)");
    size = bytes;
  }
  return buffer;
}

void launch(Backend& b, cl_kernel kernel, std::initializer_list<size_t> global,
            std::initializer_list<size_t> local) {
  const cl_uint dims = cl_uint(global.size());
  size_t g[3] = {1, 1, 1}, l[3] = {1, 1, 1};
  std::copy(global.begin(), global.end(), g);
  for (cl_uint i = 0; i < dims; ++i)
    if (g[i] == 0) return;  // nothing to do
  if (local.size()) {
    std::copy(local.begin(), local.end(), l);
    for (cl_uint i = 0; i < dims; ++i) g[i] = (g[i] + l[i] - 1) / l[i] * l[i];
  }
  // A CPU device runs each work-group on one thread, and left to choose, PoCL makes few large groups
  // (the 100 work-items of a filter gradient became one group, one thread): kernels whose
  // work-items are heavy get groups of one.
  const bool own_groups = local.size() || b.is_cpu;
  cl_int status = clEnqueueNDRangeKernel(b.queue, kernel, dims, nullptr, g, own_groups ? l : nullptr, 0,
                                         nullptr, nullptr);
  if (status != CL_SUCCESS) {
    char name[128] = "?";
    clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof(name), name, nullptr);
    throw sdk::Error(std::string("enqueuing kernel '") + name + "' failed: " + cl_error_name(status));
  }
}

// ------------------------------------------------------------------------------------------------
// Entry points

namespace {

// Usable wherever the selected OpenCL device exists. Ranked below onednn even on a GPU: which is
// faster depends on the device, so `auto` keeps the CPU default and users ask for opencl by name.
int32_t score(std::string& why) {
  DeviceChoice choice;
  if (!choose_device(choice, why)) return 0;
  why.clear();
  return (choice.type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) ? 60 : 20;
}

void init(const lamina_host* host) {
  DeviceChoice choice;
  std::string why;
  if (!choose_device(choice, why)) throw sdk::Error("opencl: " + why);
  // Never destroyed: tensors released during static destruction, after this library's own
  // destructors would have run, still call release() on it.
  static Backend* backend = [&] {
    try {
      return new Backend(choice);
    } catch (const std::exception& e) {
      throw sdk::Error(std::string("opencl: ") + e.what());
    }
  }();
  tune_clblast(*backend);

  lamina_backend table = memory_table(*backend);
  table.device = backend->description.c_str();
  sdk::register_backend<Kernels>(host, table);
}

}  // namespace
}  // namespace lamina::opencl

LAMINA_PLUGIN(
    "opencl", "0.1.0", LAMINA_KIND_BACKEND,
    "OpenCL 1.2 backend: its own OpenCL C kernels, GEMM through CLBlast; runs on any OpenCL device, "
    "including the CPU through PoCL",
    lamina::opencl::init, lamina::opencl::score)
LAMINA_PLUGIN_CONFIGURE(lamina::opencl::configure)
