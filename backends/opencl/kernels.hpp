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

#include <lamina/sdk/plugin.hpp>

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
// A size as a kernel's int argument; check_view has bounded every tensor's size.
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
// Memory (memory.cpp): the table's buffer functions.

void* alloc(void* self, size_t bytes, lamina_error* error);
void release(void* self, void* buffer);
lamina_status copy_in(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                      lamina_error* error);
lamina_status copy_out(void* self, const void* buffer, size_t offset, void* destination, size_t bytes,
                       lamina_error* error);
lamina_status synchronize(void* self, lamina_error* error);

// ------------------------------------------------------------------------------------------------
// Kernels: each family's file defines its kernels; plugin.cpp lists them by op name.

using KernelFn = lamina_status(void* backend, const lamina_view* inputs, int32_t n_inputs,
                               const lamina_view* outputs, int32_t n_outputs, const lamina_attrs* attrs,
                               lamina_error* error);

// elementwise.cpp
KernelFn copy, fill, neg, exp, log, sqrt, square, relu, sigmoid, tanh, scale, clip;
KernelFn relu_backward, sigmoid_backward, tanh_backward, clip_backward;
KernelFn add, sub, mul, div;
// reduce.cpp
KernelFn reduce_sum, softmax, log_softmax;
// y (cols) = Σ over rows of x (rows, cols): reduce_sum's common case, and bias gradients.
void sum_rows(Backend& b, DeviceTensor x, int64_t rows, int64_t cols, DeviceTensor y);
// matmul.cpp
KernelFn matmul, matmul_bias;
void tune_clblast(const Backend& backend);  // CLBlast's parameters for devices it has none for
// conv.cpp
KernelFn conv2d, conv2d_backward_data, conv2d_backward_filter;
KernelFn conv2d_bias, conv2d_backward_filter_bias;
// pool.cpp
KernelFn max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward;
// random.cpp
KernelFn dropout_mask;
// update.cpp
KernelFn sgd_update, adadelta_update, adam_update, rmsprop_update;
// layout.cpp
KernelFn concat, slice, slice_backward, pad, transpose;

// Runs a kernel body under the backend's lock, turning any exception into LAMINA_ERROR with a
// message naming the op; with LAMINA_PROFILE set, waits for the work it enqueued.
template <class Body>
lamina_status run_kernel(void* self, const char* op, lamina_error* error, Body&& body) noexcept {
  return sdk::guarded(error, [&] {
    try {
      if (!self) throw sdk::Error("kernel called without the backend's state");
      Backend& b = *static_cast<Backend*>(self);
      std::lock_guard lock(b.mutex);
      body();
      if (b.wait_per_kernel) check_cl(clFinish(b.queue), "clFinish");
    } catch (const std::exception& e) {
      throw sdk::Error(std::string("opencl backend, op '") + op + "': " + e.what());
    }
  });
}

}  // namespace lamina::opencl

// Defines kernel `name` (external linkage, for plugin.cpp's table) with a body operating on `args`.
// Use inside namespace lamina::opencl.
#define OPENCL_KERNEL(name)                                                                          \
  static void name##_body(::lamina::sdk::KernelArgs& args);                                          \
  lamina_status name(void* backend, const lamina_view* in, int32_t n_in, const lamina_view* out,     \
                     int32_t n_out, const lamina_attrs* attrs, lamina_error* error) {                \
    ::lamina::sdk::KernelArgs args{backend, in, n_in, out, n_out, ::lamina::sdk::AttrReader(attrs)}; \
    return ::lamina::opencl::run_kernel(backend, #name, error, [&] { name##_body(args); });          \
  }                                                                                                  \
  static void name##_body(::lamina::sdk::KernelArgs& args)

namespace lamina::opencl {

// ------------------------------------------------------------------------------------------------
// Argument checks. They cost O(rank) and keep a malformed call from reaching the device.

inline std::string shape_string(const lamina_view& v) {
  std::string s = "[";
  for (int32_t i = 0; i < v.ndim; ++i) s += (i ? ", " : "") + std::to_string(v.shape[i]);
  return s + "]";
}

inline std::string name_list(std::initializer_list<const char*> names) {
  std::string s;
  for (const char* n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  return "(" + s + ")";
}

// Kernels index with 32-bit ints (cheaper on every device); a tensor must fit that, offset included.
inline void check_view(const lamina_view& v, const char* name) {
  if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS)
    throw sdk::Error(std::string(name) + " has invalid rank " + std::to_string(v.ndim));
  if (v.dtype != LAMINA_DTYPE_FLOAT32)
    throw sdk::Error(std::string(name) + " has dtype " + std::to_string(v.dtype) +
                     ", only float32 is supported");
  for (int32_t i = 0; i < v.ndim; ++i)
    if (v.shape[i] < 0) throw sdk::Error(std::string(name) + " has a negative dimension " + shape_string(v));
  if (!v.data && sdk::view_size(v) > 0) throw sdk::Error(std::string(name) + " has no buffer");
  if (v.offset % sizeof(float) != 0)
    throw sdk::Error(std::string(name) + " starts at byte offset " + std::to_string(v.offset) +
                     ", which is not a whole number of floats");
  if (int64_t(v.offset / sizeof(float)) + sdk::view_size(v) > INT_MAX)
    throw sdk::Error(std::string(name) + " " + shape_string(v) +
                     " is too large: this backend indexes tensors with 32-bit integers");
}

// Checks the number of inputs and outputs (named for the message) and that every view is sound.
inline void expect_arity(const sdk::KernelArgs& args, std::initializer_list<const char*> inputs,
                         std::initializer_list<const char*> outputs) {
  if (args.n_inputs != int32_t(inputs.size()) || args.n_outputs != int32_t(outputs.size()))
    throw sdk::Error("takes inputs " + name_list(inputs) + " and outputs " + name_list(outputs) + ", got " +
                     std::to_string(args.n_inputs) + " input(s) and " + std::to_string(args.n_outputs) +
                     " output(s)");
  const char* const* in_name = inputs.begin();
  for (int32_t i = 0; i < args.n_inputs; ++i) check_view(args.inputs[i], in_name[i]);
  const char* const* out_name = outputs.begin();
  for (int32_t i = 0; i < args.n_outputs; ++i) check_view(args.outputs[i], out_name[i]);
}

inline void expect_rank(const lamina_view& v, const char* name, int32_t rank, const char* layout) {
  if (v.ndim != rank)
    throw sdk::Error(std::string(name) + " has shape " + shape_string(v) + ", expected rank " +
                     std::to_string(rank) + " " + layout);
}

inline bool same_shape(const lamina_view& a, const lamina_view& b) {
  if (a.ndim != b.ndim) return false;
  for (int32_t i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  return true;
}

inline void expect_same_shape(const lamina_view& a, const char* a_name, const lamina_view& b,
                              const char* b_name) {
  if (!same_shape(a, b))
    throw sdk::Error(std::string(a_name) + " has shape " + shape_string(a) + " but " + b_name +
                     " has shape " + shape_string(b) + "; they must match");
}

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

// ------------------------------------------------------------------------------------------------
// Sliding windows, shared by conv2d and the pools: a kh×kw window moved by (sh, sw) over an input
// padded by (top, bottom, left, right). Output cell (i, j) covers input rows i·sh − top + [0, kh)
// and columns j·sw − left + [0, kw).

struct Window {
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};

// Reads `strides` and `pads` (defaults: 1 and 0) for a window of kh×kw.
inline Window read_window(const sdk::AttrReader& attrs, int64_t kh, int64_t kw) {
  auto strides = attrs.get_ints<2>("strides", {1, 1});
  auto pads = attrs.get_ints<4>("pads", {0, 0, 0, 0});
  if (strides[0] < 1 || strides[1] < 1)
    throw sdk::Error("strides must be >= 1, got [" + std::to_string(strides[0]) + ", " +
                     std::to_string(strides[1]) + "]");
  for (int64_t p : pads)
    if (p < 0 || p > INT_MAX / 4) throw sdk::Error("pads must be >= 0, got a pad of " + std::to_string(p));
  if (kh < 1 || kw < 1)
    throw sdk::Error("window must be at least 1x1, got " + std::to_string(kh) + "x" + std::to_string(kw));
  if (strides[0] > INT_MAX / 4 || strides[1] > INT_MAX / 4 || kh > INT_MAX / 4 || kw > INT_MAX / 4)
    throw sdk::Error("window or strides too large");
  return {kh, kw, strides[0], strides[1], pads[0], pads[1], pads[2], pads[3]};
}

// The output size along one axis is fixed by the input size and the window; a mismatch means the
// caller computed shapes with a different convention, so it is refused.
inline void expect_extent(const char* axis, int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t k, int64_t s,
                          int64_t out) {
  int64_t padded = in + pad_lo + pad_hi;
  int64_t expected = padded >= k ? (padded - k) / s + 1 : 0;
  if (out != expected || expected == 0)
    throw sdk::Error(std::string("output ") + axis + " is " + std::to_string(out) + " but an input " + axis +
                     " of " + std::to_string(in) + " padded by " + std::to_string(pad_lo) + "+" +
                     std::to_string(pad_hi) + " with window " + std::to_string(k) + " and stride " +
                     std::to_string(s) + " gives " + std::to_string(expected));
}

inline void expect_window_fits(const Window& w, int64_t h, int64_t wd, int64_t oh, int64_t ow) {
  expect_extent("height", h, w.top, w.bottom, w.kh, w.sh, oh);
  expect_extent("width", wd, w.left, w.right, w.kw, w.sw, ow);
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
