// cuDNN descriptor setup; see descriptors.hpp.
#include "descriptors.hpp"

namespace lamina::cudnn {

static_assert(int(Math::default_math) == CUDNN_DEFAULT_MATH && int(Math::tensor_op) == CUDNN_TENSOR_OP_MATH &&
                  int(Math::tensor_op_allow_conversion) == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
                  int(Math::fma) == CUDNN_FMA_MATH,
              "lamina::cudnn::Math mirrors cudnnMathType_t");

std::string cudnn_status_string(cudnnStatus_t status) {
  return std::string(cudnnGetErrorString(status)) + " (" + std::to_string(int(status)) + ")";
}

void check_cudnn(cudnnStatus_t status, const std::string& what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw sdk::Error(what + ": cuDNN returned " + cudnn_status_string(status));
}

const char* layout_name(Layout layout) {
  return layout == Layout::nhwc ? "NHWC" : "NCHW";
}

void set_tensor(cudnnTensorDescriptor_t desc, Layout layout, int64_t n, int64_t c, int64_t h, int64_t w) {
  check_cudnn(cudnnSetTensor4dDescriptor(desc, layout == Layout::nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                         CUDNN_DATA_FLOAT, to_int(n, "a tensor's batch size"),
                                         to_int(c, "a tensor's channels"), to_int(h, "a tensor's height"),
                                         to_int(w, "a tensor's width")),
              std::string("describing a ") + layout_name(layout) + " tensor of " + std::to_string(n) + "x" +
                  std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w));
}

void set_rows(cudnnTensorDescriptor_t desc, int64_t rows, int64_t length) {
  to_int(rows * length, "the element count of a row block");
  set_tensor(desc, Layout::nchw, rows, length, 1, 1);
}

void set_filter(cudnnFilterDescriptor_t desc, Layout layout, int64_t o, int64_t c, int64_t kh, int64_t kw) {
  check_cudnn(cudnnSetFilter4dDescriptor(desc, CUDNN_DATA_FLOAT,
                                         layout == Layout::nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                         to_int(o, "the filter's outputs"), to_int(c, "the filter's inputs"),
                                         to_int(kh, "the filter's height"), to_int(kw, "the filter's width")),
              std::string("describing a ") + layout_name(layout) + " filter");
}

void set_convolution(cudnnConvolutionDescriptor_t desc, const ConvGeometry& g, Math math) {
  check_cudnn(cudnnSetConvolution2dDescriptor(
                  desc, to_int(g.cudnn_pad_h(), "the vertical pad"),
                  to_int(g.cudnn_pad_w(), "the horizontal pad"), to_int(g.sh, "the vertical stride"),
                  to_int(g.sw, "the horizontal stride"), to_int(g.dh, "the vertical dilation"),
                  to_int(g.dw, "the horizontal dilation"), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              "describing the convolution");
  check_cudnn(cudnnSetConvolutionGroupCount(desc, to_int(g.groups, "the group count")),
              "setting the convolution's group count");
  check_cudnn(cudnnSetConvolutionMathType(desc, cudnnMathType_t(int(math))),
              "setting the convolution's math type");
}

void set_pooling(cudnnPoolingDescriptor_t desc, const PoolGeometry& g, bool max) {
  // Only symmetric pads reach cuDNN (choose_pool_path); `top` and `left` are both sides' pads.
  check_cudnn(cudnnSetPooling2dDescriptor(
                  desc, max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                  CUDNN_PROPAGATE_NAN, to_int(g.kh, "the pool height"), to_int(g.kw, "the pool width"),
                  to_int(g.top, "the vertical pad"), to_int(g.left, "the horizontal pad"),
                  to_int(g.sh, "the vertical stride"), to_int(g.sw, "the horizontal stride")),
              "describing the pool");
}

Dims4 convolution_output(cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t x,
                         cudnnFilterDescriptor_t w) {
  Dims4 d;
  check_cudnn(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &d.n, &d.c, &d.h, &d.w),
              "computing the convolution's output size");
  return d;
}

Dims4 pooling_output(cudnnPoolingDescriptor_t pool, cudnnTensorDescriptor_t x) {
  Dims4 d;
  check_cudnn(cudnnGetPooling2dForwardOutputDim(pool, x, &d.n, &d.c, &d.h, &d.w),
              "computing the pool's output size");
  return d;
}

void set_batch_norm(cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t params, const lamina_view& x) {
  int64_t between = 1;
  for (int32_t d = 1; d + 1 < x.ndim; ++d) between *= x.shape[d];
  set_tensor(x_desc, Layout::nhwc, x.shape[0], x.shape[x.ndim - 1], between, 1);
  check_cudnn(cudnnDeriveBNTensorDescriptor(params, x_desc, CUDNN_BATCHNORM_SPATIAL),
              "describing the batch-normalization parameters");
}

void tensor_layout(cudnnTensorDescriptor_t desc, Dims4& dims, Dims4& strides) {
  cudnnDataType_t type;
  check_cudnn(cudnnGetTensor4dDescriptor(desc, &type, &dims.n, &dims.c, &dims.h, &dims.w, &strides.n,
                                         &strides.c, &strides.h, &strides.w),
              "reading a tensor descriptor");
}

void describe_convolution(ConvDescriptors& d, const ConvGeometry& g, Layout layout, Math math) {
  set_tensor(d.x, layout, g.n, g.c, g.cudnn_h(), g.cudnn_w());
  set_filter(d.w, layout, g.o, g.cg, g.kh, g.kw);  // grouped: each output reads C/G inputs
  set_tensor(d.y, layout, g.n, g.o, g.oh, g.ow);
  set_convolution(d.conv, g, math);
  const Dims4 want{int(g.n), int(g.o), int(g.oh), int(g.ow)};
  const Dims4 got = convolution_output(d.conv, d.x, d.w);
  if (!(got == want))
    throw sdk::Error("cuDNN computes a " + std::to_string(got.n) + "x" + std::to_string(got.c) + "x" +
                     std::to_string(got.h) + "x" + std::to_string(got.w) +
                     " (NCHW) output where lamina expects " + std::to_string(want.n) + "x" +
                     std::to_string(want.c) + "x" + std::to_string(want.h) + "x" + std::to_string(want.w));
}

}  // namespace lamina::cudnn
