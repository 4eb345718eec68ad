// cuDNN descriptors for the cudnn backend: owning wrappers, and the functions that describe lamina's
// tensors, convolutions and pools to cuDNN. Setting up a descriptor needs no GPU (only executing
// needs one), so tests/test_cudnn_host.cpp checks these on any machine with cuDNN installed.
#pragma once

#include <cudnn.h>

#include <string>

#include "geometry.hpp"

namespace lamina::cudnn {

// "CUDNN_STATUS_NOT_SUPPORTED (3000)"
std::string cudnn_status_string(cudnnStatus_t status);
// Throws sdk::Error("<what>: cuDNN returned <status>") unless `status` is success.
void check_cudnn(cudnnStatus_t status, const std::string& what);

template <class T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() { check_cudnn(Create(&handle_), "creating a cuDNN descriptor"); }
  ~Descriptor() {
    if (handle_) Destroy(handle_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return handle_; }
  operator T() const { return handle_; }

 private:
  T handle_ = nullptr;
};

using TensorDesc =
    Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc =
    Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                            cudnnDestroyConvolutionDescriptor>;
using PoolDesc =
    Descriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using ActivationDesc = Descriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                                  cudnnDestroyActivationDescriptor>;

// The memory layout a convolution runs in. lamina's activations are NHWC, and cuDNN runs NHWC
// directly with filters stored (O,KH,KW,C); NCHW with (O,C,KH,KW) filters is the layout every cuDNN
// algorithm supports, kept as the fallback should no algorithm accept NHWC for some geometry.
enum class Layout { nhwc, nchw };
const char* layout_name(Layout layout);

struct Dims4 {
  int n = 0, c = 0, h = 0, w = 0;
  bool operator==(const Dims4&) const = default;
};

// A dense float tensor of logical size (n, c, h, w) stored in `layout`.
void set_tensor(cudnnTensorDescriptor_t desc, Layout layout, int64_t n, int64_t c, int64_t h, int64_t w);
// `rows` rows of `length` floats, as (rows, length, 1, 1): softmax over each row, element-wise ops.
void set_rows(cudnnTensorDescriptor_t desc, int64_t rows, int64_t length);
// A float filter of o outputs, c inputs, kh×kw, stored (O,KH,KW,C) for nhwc or (O,C,KH,KW) for nchw.
void set_filter(cudnnFilterDescriptor_t desc, Layout layout, int64_t o, int64_t c, int64_t kh, int64_t kw);
// Cross-correlation (lamina's conv2d), float accumulation, with the given math type.
void set_convolution(cudnnConvolutionDescriptor_t desc, const ConvGeometry& g, Math math);
void set_pooling(cudnnPoolingDescriptor_t desc, const PoolGeometry& g, bool max);

// Batch normalization over the last axis of x (..., C): x as NHWC (N, C, S, 1), N its first axis and
// S the product of those between, so that CUDNN_BATCHNORM_SPATIAL's statistics over N, H and W are
// lamina's over every axis but the last; and the (1, C, 1, 1) descriptor of gamma, beta and the
// statistics, as cuDNN derives it for that mode.
void set_batch_norm(cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t params, const lamina_view& x);

// What cuDNN computes as the output size of a convolution or a pool.
Dims4 convolution_output(cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t x,
                         cudnnFilterDescriptor_t w);
Dims4 pooling_output(cudnnPoolingDescriptor_t pool, cudnnTensorDescriptor_t x);
// The logical size and element strides of a 4-D tensor descriptor.
void tensor_layout(cudnnTensorDescriptor_t desc, Dims4& dims, Dims4& strides);

// The descriptors of one convolution: x (or dx), w (or dw), y (or dy), and the convolution itself.
struct ConvDescriptors {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
};

// Describes convolution `g` in `layout` with `math`: x is the (explicitly padded, when the pads are
// asymmetric) input. Throws if cuDNN's output size differs from lamina's, which would mean the two
// disagree on the geometry.
void describe_convolution(ConvDescriptors& d, const ConvGeometry& g, Layout layout, Math math);

}  // namespace lamina::cudnn
