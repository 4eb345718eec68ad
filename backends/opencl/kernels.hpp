// The opencl backend: shared state, the kernel-side helpers every op family uses, and the checks
// each kernel runs on its arguments before enqueuing anything.
//
// Tensors live in device buffers (cl_mem); a lamina_view's `data` is the buffer and `offset` the
// byte offset of element 0 in it (views and slices share buffers). Kernels receive each tensor as a
// (buffer, element offset) pair rather than as sub-buffers, because clCreateSubBuffer requires
// offsets aligned to CL_DEVICE_MEM_BASE_ADDR_ALIGN, which a slice of a batch is not in general.
//
// Work is enqueued on one in-order queue and never waited for by the kernels; the host waits only
// when it reads a tensor back (copy_out) or calls synchronize. With LAMINA_PROFILE set, every
// kernel waits for its own work, so that the core's per-op timings measure the device work.
#pragma once

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <lamina/sdk/geometry.hpp>

#include <climits>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lamina::opencl {

using namespace sdk;  // the SDK's checks and geometry read as this backend's own

// ------------------------------------------------------------------------------------------------
// OpenCL errors

// "CL_OUT_OF_RESOURCES" for -5, or "OpenCL error -N" for codes without a name.
std::string cl_error_name(cl_int status);

// Throws "<what> failed: CL_..." unless `status` is CL_SUCCESS.
inline void check_cl(cl_int status, const char* what) {
  if (status != CL_SUCCESS) throw sdk::Error(std::string(what) + " failed: " + cl_error_name(status));
}

// ------------------------------------------------------------------------------------------------
// Device selection (plugin.cpp)

// The device this process would use, chosen by LAMINA_OPENCL_PLATFORM (platform index; default:
// the first platform with a device) and LAMINA_DEVICE (device index within it; default 0).
struct DeviceChoice {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  int platform_index = 0, device_index = 0;
  std::string platform_name, device_name;
  cl_device_type type = 0;
  std::string description;  // what `lamina plugins` shows
};

// Fills `out` and returns true, or returns false with the reason in `why`.
bool choose_device(DeviceChoice& out, std::string& why);

// ------------------------------------------------------------------------------------------------
// The backend's state: one per process, created by init, passed to every call as `self`.

class Backend {
 public:
  explicit Backend(const DeviceChoice& choice);
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  cl_device_id device = nullptr;
  std::string device_name;       // CL_DEVICE_NAME
  std::string description;       // the table's device string
  cl_ulong max_alloc = 0;        // CL_DEVICE_MAX_MEM_ALLOC_SIZE
  bool is_cpu = false;           // CL_DEVICE_TYPE_CPU: choose work sizes for caches, not for wavefronts
  bool is_pocl = false;          // the platform is PoCL (CLBlast's parameters are tuned for it)
  bool wait_per_kernel = false;  // LAMINA_PROFILE: each kernel waits for its own work

  // Kernel objects hold their arguments, so setting them and enqueuing is one critical section;
  // kernel bodies run under this lock (see OPENCL_KERNEL).
  std::mutex mutex;

  // The kernel `name` of the program built from `source` with `options` (-D definitions), built on
  // first use and kept for the process. `family` names the source in messages. A build failure
  // throws with the compiler's log (and logs all of it as a warning).
  cl_kernel kernel(const char* family, const char* source, const std::string& options, const char* name);

  // Device buffer `slot` of at least `bytes`, for a kernel's intermediate results: 0 a transposed
  // filter (or an overlapping copy's staging), 1 a zero-bordered image, 2 CLBlast's padded operands.
  // Valid until the next kernel call. The queue is in order, so work enqueued earlier has finished
  // with the previous contents by the time later work overwrites them.
  cl_mem scratch(int slot, size_t bytes);

 private:
  struct Program {
    cl_program program = nullptr;
    std::map<std::string, cl_kernel> kernels;
  };
  std::map<std::string, Program> programs_;  // by family + options
  cl_mem scratch_[3] = {nullptr, nullptr, nullptr};
  size_t scratch_bytes_[3] = {0, 0, 0};
};

// A tensor as kernels take it: its buffer and the index of its element 0 there.
struct DeviceTensor {
  cl_mem buffer;
  cl_int offset;
};
inline DeviceTensor device_tensor(const lamina_view& v) {
  return {static_cast<cl_mem>(v.data), cl_int(v.offset / sizeof(float))};
}
// A size as a kernel's int argument; Kernels::run has bounded every tensor's size.
inline int32_t as_int(int64_t value) {
  return int32_t(value);
}

inline Backend& backend_of(const sdk::KernelArgs& args) {
  if (!args.backend) throw sdk::Error("kernel called without the backend's state");
  return *static_cast<Backend*>(args.backend);
}

// Options every program is built with, then LAMINA_OPENCL_BUILD_OPTIONS (for experiments, e.g.
// -cl-fast-relaxed-math), read at each build.
std::string base_build_options();

// ------------------------------------------------------------------------------------------------
// Memory (memory.cpp): a backend table with `self` and the buffer functions set.
lamina_backend memory_table(Backend& backend);

// ------------------------------------------------------------------------------------------------
// Kernels: each family's file defines its kernels with OPENCL_KERNEL, which enters them in the table.

// y (cols) = Σ over rows of x (rows, cols): reduce_sum's common case, and bias gradients (reduce.cpp).
void sum_rows(Backend& b, DeviceTensor x, int64_t rows, int64_t cols, DeviceTensor y);
void tune_clblast(const Backend& backend);  // CLBlast's parameters for devices it has none for (matmul.cpp)

// Kernels index with 32-bit ints (cheaper on every device); a tensor must fit that, offset included.
inline void check_device_view(const lamina_view& v, const char* role, int32_t i) {
  if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS) return;  // expect_arity reports it
  if (v.offset % sizeof(float) != 0)
    throw sdk::Error(std::string(role) + " " + std::to_string(i) + " starts at byte offset " +
                     std::to_string(v.offset) + ", which is not a whole number of floats");
  if (int64_t(v.offset / sizeof(float)) + sdk::view_size(v) > INT_MAX)
    throw sdk::Error(std::string(role) + " " + std::to_string(i) + " " + shape_string(v) +
                     " is too large: this backend indexes tensors with 32-bit integers");
}

// Runs each kernel body under the backend's lock, after checking that every view suits 32-bit
// indexing; with LAMINA_PROFILE set, waits for the work it enqueued.
struct Kernels : sdk::KernelPolicy {
  static constexpr const char* name = "opencl";
  using State = Backend;
  template <class Body>
  static void run(Backend& b, const sdk::KernelArgs& args, Body&& body) {
    for (int32_t i = 0; i < args.n_inputs; ++i) check_device_view(args.inputs[i], "input", i);
    for (int32_t i = 0; i < args.n_outputs; ++i) check_device_view(args.outputs[i], "output", i);
    std::lock_guard lock(b.mutex);
    body();
    if (b.wait_per_kernel) check_cl(clFinish(b.queue), "clFinish");
  }
};

}  // namespace lamina::opencl

// Defines the kernel of op `name` (a function of that name) with a body operating on `args`. Use
// inside namespace lamina::opencl.
#define OPENCL_KERNEL(name) LAMINA_BACKEND_KERNEL(::lamina::opencl::Kernels, name, #name)

namespace lamina::opencl {

// ------------------------------------------------------------------------------------------------
// Kernel arguments and launches

// clSetKernelArg for every argument in order; a DeviceTensor takes two (buffer, element offset).
class ArgSetter {
 public:
  explicit ArgSetter(cl_kernel kernel) : kernel_(kernel) {}
  template <class T>
  ArgSetter& operator()(const T& value) {
    check_cl(clSetKernelArg(kernel_, index_++, sizeof(T), &value), "clSetKernelArg");
    return *this;
  }
  ArgSetter& operator()(const DeviceTensor& t) { return (*this)(t.buffer)(t.offset); }

 private:
  cl_kernel kernel_;
  cl_uint index_ = 0;
};
template <class... Args>
void set_args(cl_kernel kernel, const Args&... args) {
  ArgSetter set(kernel);
  (set(args), ...);
}

// Enqueues `kernel` over `global` work-items. With `local`, each global size is rounded up to a
// multiple of it (kernels check their bounds); without, work-groups are single work-items on a CPU
// device, and the implementation's choice elsewhere.
void launch(Backend& b, cl_kernel kernel, std::initializer_list<size_t> global,
            std::initializer_list<size_t> local = {});

// Local sizes for a 2-D range of (inner, outer) work-items: `group` work-items, as many along the
// inner dimension as it has (powers of two, so both divide the rounded global sizes).
inline std::pair<size_t, size_t> groups_of(size_t inner, size_t outer, size_t group) {
  size_t a = 1, b = 1;
  while (a < group && a < inner) a *= 2;
  while (a * b < group && b < outer) b *= 2;
  return {a, b};
}

// A conv or pool geometry whose window sizes, strides and pads the kernels can take as ints.
template <class Geometry>
Geometry int_window(Geometry g) {
  for (int64_t v : {g.kh, g.kw, g.sh, g.sw, g.top, g.bottom, g.left, g.right})
    if (v > INT_MAX / 4) throw sdk::Error("window, strides or pads too large");
  if constexpr (requires { g.dh; })
    if (g.span_h() > INT_MAX / 4 || g.span_w() > INT_MAX / 4) throw sdk::Error("dilation too large");
  return g;
}

// "-DNAME=value" for each pair, the way kernels are specialised to a geometry.
inline std::string defines(std::initializer_list<std::pair<const char*, int64_t>> values) {
  std::string s;
  for (auto& [name, value] : values) s += " -D" + std::string(name) + "=" + std::to_string(value);
  return s;
}

// The OpenCL C preamble for kernels vectorised over VW consecutive floats: vec_t, VLOAD(p) and
// VSTORE(v, p) for VW in {1, 2, 4, 8, 16}; LOAD_SOME(p, count) and STORE_SOME(v, p, count) move
// only the first `count` elements (the other lanes read as 0), for the last, partial vector of a
// range whose length VW does not divide.
inline constexpr const char* kVectorPreamble = R"CL(
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#if VW == 1
typedef float vec_t;
#define VLOAD(p) (*(p))
#define VSTORE(v, p) (*(p) = (v))
#define LOAD_SOME(p, count) VLOAD(p)
#define STORE_SOME(v, p, count) VSTORE((v), (p))
#else
typedef CAT(float, VW) vec_t;
#define VLOAD(p) CAT(vload, VW)(0, (p))
#define VSTORE(v, p) CAT(vstore, VW)((v), 0, (p))
vec_t load_some(__global const float* p, int count) {
  float t[VW];
  for (int k = 0; k < VW; ++k) t[k] = k < count ? p[k] : 0.0f;
  return VLOAD(t);
}
void store_some(vec_t v, __global float* p, int count) {
  float t[VW];
  VSTORE(v, t);
  for (int k = 0; k < count; ++k) p[k] = t[k];
}
#define LOAD_SOME(p, count) ((count) == VW ? VLOAD(p) : load_some((p), (count)))
#define STORE_SOME(v, p, count) ((count) == VW ? VSTORE((v), (p)) : store_some((v), (p), (count)))
#endif
)CL";

// acc_t, the type sums accumulate in: double where the device has it (cl_khr_fp64), else float.
inline constexpr const char* kAccumulatorPreamble = R"CL(
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define ACC double
#else
#define ACC float
#endif
typedef ACC acc_t;
)CL";

// ACTIVATE(z) on vec_t values for -DACT=n, n an Activation code (activation_code below).
inline constexpr const char* kActivationPreamble = R"CL(
#if ACT == 1
#define ACTIVATE(z) ((z) > (vec_t)(0.0f) ? (z) : (vec_t)(0.0f))
#elif ACT == 2
#define ACTIVATE(z) ((vec_t)(1.0f) / ((vec_t)(1.0f) + exp(-(z))))
#elif ACT == 3
#define ACTIVATE(z) tanh(z)
#else
#define ACTIVATE(z) (z)
#endif
)CL";

// The -DACT value of a fused op's "activation" attribute.
inline int64_t activation_code(sdk::Activation a) {
  switch (a) {
    case sdk::Activation::relu:
      return 1;
    case sdk::Activation::sigmoid:
      return 2;
    case sdk::Activation::tanh:
      return 3;
    case sdk::Activation::linear:
      break;
  }
  return 0;
}

// The widest vector width in {16, 8, 4, 2, 1} that divides n.
inline int vector_width(int64_t n) {
  for (int w : {16, 8, 4, 2})
    if (n % w == 0) return w;
  return 1;
}

}  // namespace lamina::opencl
