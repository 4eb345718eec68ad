/* lamina_plugin.h — the whole contract between the lamina core and its plugins.
 *
 * C at the boundary: plain structs of function pointers, opaque handles, fixed-width integers,
 * UTF-8 strings and status codes. No C++ type, allocator or exception crosses it.
 *
 * Versioning: a plugin built against a different LAMINA_ABI_MAJOR is refused. Within a major,
 * structs only grow at the end and every struct starts with its size (`struct_size`), so a plugin
 * built against an older minor keeps working on a newer core.
 *
 * A plugin exports exactly these symbols (the SDK macro LAMINA_PLUGIN emits them):
 *   lamina_plugin_query    static description, no side effects
 *   lamina_plugin_configure optional (ABI 1.1): the user's settings for this plugin, before score
 *   lamina_plugin_score    optional: 0 = unusable on this machine (and why), higher = preferred
 *   lamina_plugin_init     handshake + explicit registration through the host table
 *   lamina_plugin_shutdown called once, in reverse load order, before the process exits
 */
#ifndef LAMINA_PLUGIN_H
#define LAMINA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LAMINA_ABI_MAJOR 1
#define LAMINA_ABI_MINOR 4
#define LAMINA_MAX_DIMS 8
#define LAMINA_ERROR_CAPACITY 1024

typedef enum lamina_status { LAMINA_OK = 0, LAMINA_ERROR = 1 } lamina_status;

/* Plugin kinds, as a bit set in lamina_plugin_info.kinds. */
enum {
  LAMINA_KIND_BACKEND = 1u,
  LAMINA_KIND_LAYER = 2u,
  LAMINA_KIND_OPTIMIZER = 4u,
  LAMINA_KIND_COMMUNICATOR = 8u /* since ABI 1.1 */
};

enum { LAMINA_DTYPE_FLOAT32 = 0 };

/* An error message written by the callee. The caller owns the storage and clears its first byte
 * before the call (C++: lamina::ErrorSlot); a callee that fails writes a NUL-terminated message
 * there, or leaves it empty. */
typedef struct lamina_error {
  char message[LAMINA_ERROR_CAPACITY];
} lamina_error;

/* ---------------------------------------------------------------------------------------------
 * Attributes: a typed key/value list that travels with every op call.
 */
typedef enum lamina_attr_type {
  LAMINA_ATTR_INT = 0,    /* ints[0] */
  LAMINA_ATTR_FLOAT = 1,  /* real */
  LAMINA_ATTR_INTS = 2,   /* ints[0..count) */
  LAMINA_ATTR_STRING = 3, /* text */
} lamina_attr_type;

typedef struct lamina_attr {
  const char* name;
  int32_t type;
  int32_t count;
  int64_t ints[LAMINA_MAX_DIMS];
  double real;
  const char* text;
} lamina_attr;

typedef struct lamina_attrs {
  int32_t count;
  const lamina_attr* items;
} lamina_attrs;

/* ---------------------------------------------------------------------------------------------
 * Backends. The core owns shapes, broadcasting, autograd and allocation of outputs; a backend
 * owns memory and kernels. A kernel receives views of contiguous, row-major float32 tensors
 * whose outputs are already allocated with their final shapes.
 */
typedef struct lamina_view {
  void* data;     /* host backends: host pointer to element 0; device backends: buffer handle */
  size_t offset;  /* device backends: byte offset of element 0 in `data`; host backends: 0 */
  int32_t ndim;
  int32_t dtype;
  int64_t shape[LAMINA_MAX_DIMS];
} lamina_view;

typedef lamina_status (*lamina_kernel_fn)(void* backend, const lamina_view* inputs, int32_t n_inputs,
                                          const lamina_view* outputs, int32_t n_outputs,
                                          const lamina_attrs* attrs, lamina_error* error);

typedef struct lamina_kernel {
  const char* op; /* an op name from docs/ops.md, e.g. "conv2d" */
  lamina_kernel_fn run;
} lamina_kernel;

typedef struct lamina_backend {
  uint32_t struct_size;
  const char* name;     /* what users type: "reference", "onednn" */
  const char* device;   /* human-readable device description */
  void* self;           /* passed back as the first argument of every call */
  int32_t host_memory;  /* 1: buffers are plain host memory, usable by any host backend */
  void* (*alloc)(void* self, size_t bytes, lamina_error* error);
  void (*release)(void* self, void* buffer);
  lamina_status (*copy_in)(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                           lamina_error* error);
  lamina_status (*copy_out)(void* self, const void* buffer, size_t offset, void* destination,
                            size_t bytes, lamina_error* error);
  lamina_status (*synchronize)(void* self, lamina_error* error); /* (optional) */
  int32_t kernel_count;
  const lamina_kernel* kernels;

  /* Since ABI 1.4, optional (all four or none): graphs of kernel calls, such as CUDA graphs, for
   * work that repeats. Between capture_begin and capture_end the kernels the calling thread runs on
   * this backend are recorded instead of run. capture_end returns the graph, or NULL with a reason
   * in `error` when the work could not be recorded (the core then runs the kernels one by one).
   * launch_graph runs a graph's kernels again, on the same buffers and attributes, in order with
   * the backend's other work; the core keeps those buffers alive until release_graph. Memory a
   * kernel takes for itself during the capture (scratch, workspace) belongs to the graph. */
  lamina_status (*capture_begin)(void* self, lamina_error* error);
  void* (*capture_end)(void* self, lamina_error* error);
  lamina_status (*launch_graph)(void* self, void* graph, lamina_error* error);
  void (*release_graph)(void* self, void* graph);
} lamina_backend;

/* ---------------------------------------------------------------------------------------------
 * Tensors seen by layers and optimizers: reference-counted opaque handles owned by the core.
 * Every handle a host call returns carries one reference the plugin must release.
 */
typedef struct lamina_tensor_impl* lamina_tensor;

/* Per-call facts a layer needs. */
typedef struct lamina_call_context {
  uint32_t struct_size;
  int32_t training; /* 1 inside fit, 0 in predict/evaluate */
  uint64_t seed;    /* fresh per layer and step; use for dropout masks and other noise */
} lamina_call_context;

typedef struct lamina_layer_builder_impl* lamina_layer_builder; /* opaque, valid during build() */

/* A layer class, e.g. Dense. One instance per layer in a model. */
typedef struct lamina_layer_class {
  uint32_t struct_size;
  const char* class_name; /* Keras class name */
  /* Parse a Keras layer config (JSON object text). Unknown keys are ignored. */
  void* (*create)(const char* config_json, lamina_error* error);
  void (*destroy)(void* layer);
  /* This layer's own config keys as a JSON object text (the core adds name/trainable/dtype);
   * the string stays valid until the next call on this layer. */
  const char* (*get_config)(void* layer);
  /* Declare weights through the builder and compute the output shape (batch dim excluded). */
  lamina_status (*build)(void* layer, lamina_layer_builder builder, const int64_t* input_shape,
                         int32_t input_ndim, int64_t* output_shape, int32_t* output_ndim,
                         lamina_error* error);
  /* Forward pass, written with host ops so the core can differentiate it. */
  lamina_status (*call)(void* layer, const lamina_call_context* context, const lamina_tensor* weights,
                        int32_t n_weights, lamina_tensor input, lamina_tensor* output,
                        lamina_error* error);

  /* Since ABI 1.3, optional (absent or NULL: one input and one output through build / call).
   * Layers with several inputs or outputs, e.g. Keras' merge layers; the core calls these instead
   * of build / call when they are set. Shapes travel as rows of LAMINA_MAX_DIMS dimensions:
   * `input_shapes` holds n_inputs rows with `input_ndims` their ranks, and the layer writes at most
   * LAMINA_MAX_OUTPUTS rows into `output_shapes` / `output_ndims` and their count in `n_outputs`.
   * build_many may be called again for a later call of the same layer (a shared layer): it must
   * then declare the same weights, which the core checks, and return that call's output shapes. */
  lamina_status (*build_many)(void* layer, lamina_layer_builder builder, int32_t n_inputs,
                              const int64_t* input_shapes, const int32_t* input_ndims,
                              int64_t* output_shapes, int32_t* output_ndims, int32_t* n_outputs,
                              lamina_error* error);
  /* Forward pass: `n_outputs` new references into `outputs` (as many as build_many gave). */
  lamina_status (*call_many)(void* layer, const lamina_call_context* context,
                             const lamina_tensor* weights, int32_t n_weights,
                             const lamina_tensor* inputs, int32_t n_inputs, lamina_tensor* outputs,
                             int32_t n_outputs, lamina_error* error);
} lamina_layer_class;

/* The most outputs one layer call may have (build_many). */
#define LAMINA_MAX_OUTPUTS 8

/* Whether a layer class table holds `member` (one added after ABI 1.0) and sets it. */
#define LAMINA_LAYER_HAS(table, member)                                                             \
  ((table)->struct_size >= offsetof(lamina_layer_class, member) + sizeof((table)->member) &&      \
   (table)->member != NULL)

/* An optimizer class, e.g. Adadelta. State lives in slots: tensors shaped like each parameter. */
typedef struct lamina_optimizer_class {
  uint32_t struct_size;
  const char* class_name;
  void* (*create)(const char* config_json, lamina_error* error);
  void (*destroy)(void* optimizer);
  const char* (*get_config)(void* optimizer);
  int32_t (*slot_count)(void* optimizer);
  const char* (*slot_name)(void* optimizer, int32_t index);
  /* Update `parameter` in place from `gradient`; `iteration` counts from 1. */
  lamina_status (*apply)(void* optimizer, lamina_tensor parameter, lamina_tensor gradient,
                         const lamina_tensor* slots, int32_t n_slots, int64_t iteration,
                         lamina_error* error);
  double (*get_learning_rate)(void* optimizer);
  void (*set_learning_rate)(void* optimizer, double learning_rate);
} lamina_optimizer_class;

/* ---------------------------------------------------------------------------------------------
 * Communicators (since ABI 1.1): collective operations between the processes of one data-parallel
 * job (MPI ranks, NCCL peers). Every rank calls the same operations in the same order.
 */
typedef struct lamina_communicator {
  uint32_t struct_size;
  const char* name;        /* what users pick: "mpi" */
  const char* description; /* e.g. "Open MPI 4.1.4, rank 0 of 2" */
  void* self;
  int32_t rank;            /* this process, 0 .. size-1 */
  int32_t size;            /* number of processes */
  /* Sums `count` floats of host memory across all ranks, in place. Returns an error rather than
   * blocking forever when a rank has gone (the communicator's timeout). */
  lamina_status (*allreduce_sum)(void* self, float* data, size_t count, lamina_error* error);
  /* Copies `count` floats of host memory from rank `root` to every rank. */
  lamina_status (*broadcast)(void* self, float* data, size_t count, int32_t root, lamina_error* error);
  /* Optional (NULL: host memory only): sums `count` floats of a device backend's memory across all
   * ranks, in place — `buffer` and `offset` (bytes) as that backend's lamina_view holds them. The
   * core calls it, after synchronising the backend, for gradients that live on a device. */
  lamina_status (*allreduce_sum_device)(void* self, void* buffer, size_t offset, size_t count,
                                        lamina_error* error);
} lamina_communicator;

/* ---------------------------------------------------------------------------------------------
 * Plugin ops (host member `register_op`): an op a plugin defines during lamina_plugin_init (a layer
 * plugin for its layers, an optimizer plugin for its updates), with its own kernels for some
 * backends and a composition of existing ops for every other. The core differentiates the
 * composition, so a plugin op needs no gradient rule, and its kernels must compute the same values.
 */
typedef struct lamina_op_kernel {
  const char* backend;  /* the backend name this kernel is for, e.g. "onednn" */
  lamina_kernel_fn run; /* gets host views on host-memory backends (lamina_backend.host_memory) */
} lamina_op_kernel;

typedef struct lamina_op_class {
  uint32_t struct_size;
  const char* name; /* unique; by convention "<plugin>.<op>", e.g. "hard_swish.hard_swish" */
  int32_t n_inputs; /* exact number of inputs; one output */
  /* The output shape from the input shapes (inputs carry shapes only, data is NULL);
   * NULL: the output has input 0's shape. */
  lamina_status (*output_shape)(const lamina_view* inputs, int32_t n_inputs, const lamina_attrs* attrs,
                                int64_t* shape /* [LAMINA_MAX_DIMS] */, int32_t* ndim, lamina_error* error);
  /* The same computation written with host ops: runs where no kernel fits the active backend, and
   * is what the core differentiates. Returns a new reference in *output. */
  lamina_status (*compose)(const lamina_tensor* inputs, int32_t n_inputs, const lamina_attrs* attrs,
                           lamina_tensor* output, lamina_error* error);
  int32_t kernel_count;
  const lamina_op_kernel* kernels;
} lamina_op_class;

/* ---------------------------------------------------------------------------------------------
 * The host table: everything a plugin may ask of the core.
 */
typedef struct lamina_host {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  void* self;

  /* registration, during lamina_plugin_init only */
  lamina_status (*register_backend)(void* self, const lamina_backend* backend, lamina_error* error);
  lamina_status (*register_layer)(void* self, const lamina_layer_class* layer, lamina_error* error);
  lamina_status (*register_optimizer)(void* self, const lamina_optimizer_class* optimizer,
                                      lamina_error* error);

  /* tensors */
  void (*tensor_retain)(lamina_tensor tensor);
  void (*tensor_release)(lamina_tensor tensor);
  int32_t (*tensor_shape)(lamina_tensor tensor, int64_t* shape /* [LAMINA_MAX_DIMS] */);

  /* ops: run `op` on the active backend, recorded for autograd. Outputs are new references. */
  lamina_status (*op)(const char* op, const lamina_tensor* inputs, int32_t n_inputs,
                      const lamina_attrs* attrs, lamina_tensor* outputs, int32_t n_outputs,
                      lamina_error* error);
  /* Overwrite `target`'s contents with `value` (same shape), outside autograd. */
  lamina_status (*assign)(lamina_tensor target, lamina_tensor value, lamina_error* error);
  /* A tensor of `shape` filled with `value`. */
  lamina_tensor (*full)(const int64_t* shape, int32_t ndim, float value, lamina_error* error);

  /* layers: declare a weight during build(); `initializer_json` is a Keras initializer
   * (a string such as "glorot_uniform" or a {"class_name", "config"} object). */
  lamina_status (*add_weight)(lamina_layer_builder builder, const char* name, const int64_t* shape,
                              int32_t ndim, const char* initializer_json, int32_t trainable,
                              lamina_error* error);

  /* messages: level 0 debug, 1 info, 2 warning */
  void (*log)(int32_t level, const char* message);

  /* Since ABI 1.1. Members below were added after ABI 1.0 (the core refuses plugins of a newer minor than its own,
   * so a plugin sees them; LAMINA_HOST_HAS(host, member) checks a table's struct_size for one). */

  /* Defines an op (lamina_op_class), during lamina_plugin_init only. */
  lamina_status (*register_op)(void* self, const lamina_op_class* op, lamina_error* error);

  /* Registers a communicator, during lamina_plugin_init only */
  lamina_status (*register_communicator)(void* self, const lamina_communicator* communicator,
                                         lamina_error* error);

  /* Since ABI 1.2. A tensor of `shape` holding a copy of `data` (row-major float32, as many values
   * as the shape has elements), on the active backend; outside autograd (a constant). */
  lamina_tensor (*tensor_from_host)(const int64_t* shape, int32_t ndim, const float* data,
                                    lamina_error* error);
} lamina_host;

/* Whether a host table is long enough to hold `member` (a member added after ABI 1.0). */
#define LAMINA_HOST_HAS(host, member) \
  ((host)->struct_size >= offsetof(lamina_host, member) + sizeof((host)->member) && (host)->member != NULL)

/* ---------------------------------------------------------------------------------------------
 * Entry points.
 */
typedef struct lamina_plugin_info {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* name;
  const char* version;
  uint32_t kinds;
  const char* description;
} lamina_plugin_info;

typedef const lamina_plugin_info* (*lamina_plugin_query_fn)(void);
/* Optional, since ABI 1.1; called once, before score and init. `settings_json` is a JSON object:
 * the user configuration's `backends.<plugin name>` object, plus its top-level "device" when the
 * object has none (e.g. {"platform": 0, "device": 1}); "{}" when the user set nothing. An error
 * (an unknown key, a value of the wrong type) makes the plugin unusable with that message. */
typedef lamina_status (*lamina_plugin_configure_fn)(const char* settings_json, lamina_error* error);
/* Returns 0 when unusable on this machine, with the reason in `why`; larger is better. */
typedef int32_t (*lamina_plugin_score_fn)(lamina_error* why);
typedef lamina_status (*lamina_plugin_init_fn)(const lamina_host* host, uint32_t host_abi_minor,
                                               lamina_error* error);
typedef void (*lamina_plugin_shutdown_fn)(void);

#ifdef __cplusplus
}

namespace lamina {
// An empty lamina_error for one call. Only the first byte is cleared: zeroing all
// LAMINA_ERROR_CAPACITY bytes before every op call (`lamina_error error{}`) was 3% of the seed MLP's
// training step.
struct ErrorSlot : lamina_error {
  ErrorSlot() { message[0] = '\0'; }
};
}  // namespace lamina
#endif

#endif /* LAMINA_PLUGIN_H */
