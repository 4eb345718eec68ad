// Batch normalization over the last axis on cuDNN's batch-normalization calls (CUDNN_BATCHNORM_SPATIAL).
//
// x (..., C) is described to cuDNN as NHWC (N, C, S, 1), N the first axis and S the product of the
// ones between: statistics over N and S, lamina's "every axis but the last". gamma, beta and the
// statistics share one (1, C, 1, 1) descriptor.
//
// Training: cuDNN returns the batch mean and the inverse standard deviation, and moves running
// statistics with the unbiased variance. Called with an exponential-average factor of 1 on zeroed
// outputs, its running mean is the batch mean and its running variance the unbiased batch variance,
// which one small kernel scales by (m − 1)/m into the biased variance the op returns. The backward
// call gets the saved statistics back as mean and 1/√(variance + ε), computed by another.
#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

__global__ void scale_kernel(float* v, int64_t n, float factor) {
  GRID_STRIDE_LOOP(i, n) {
    v[i] *= factor;
  }
}

__global__ void inverse_std_kernel(const float* variance, float* out, int64_t n, float epsilon) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] = rsqrtf(variance[i] + epsilon);
  }
}

void describe(Backend& be, const lamina_view& x) {
  set_batch_norm(be.tensor_a, be.tensor_b, x);
}

CUDNN_KERNEL(op_batch_norm_train, "batch_norm_train") {
  const BatchNormArgs b = batch_norm_args(args, {"x", "gamma", "beta"}, {"y", "mean", "variance"});
  if (b.channels == 0) return;
  float* mean = dev(args.outputs[1]);
  float* variance = dev(args.outputs[2]);
  // zeros: the statistics of an empty batch, and what cuDNN's running averages start from
  fill_device(be, mean, b.channels, 0.0f);
  fill_device(be, variance, b.channels, 0.0f);
  if (b.rows == 0) return;
  if (b.rows == 1) {  // one value per channel: y = beta, variance 0 (cuDNN's unbiased one divides by 0)
    check_cuda(cudaMemcpyAsync(mean, dev(args.inputs[0]), size_t(b.channels) * sizeof(float),
                               cudaMemcpyDeviceToDevice, be.stream),
               "copying on the device");
    check_cuda(cudaMemcpyAsync(dev(args.outputs[0]), dev(args.inputs[2]), size_t(b.channels) * sizeof(float),
                               cudaMemcpyDeviceToDevice, be.stream),
               "copying on the device");
    return;
  }
  describe(be, args.inputs[0]);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnBatchNormalizationForwardTraining(
                  be.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, be.tensor_a, dev(args.inputs[0]),
                  be.tensor_a, dev(args.outputs[0]), be.tensor_b, dev(args.inputs[1]), dev(args.inputs[2]),
                  1.0, mean, variance, b.epsilon, nullptr, nullptr),
              "cudnnBatchNormalizationForwardTraining");
  const Launch l = launch_for(be, b.channels);
  scale_kernel<<<l.blocks, l.threads, 0, be.stream>>>(variance, b.channels,
                                                      float(double(b.rows - 1) / double(b.rows)));
}

CUDNN_KERNEL(op_batch_norm_inference, "batch_norm_inference") {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "beta", "moving_mean", "moving_variance"}, {"y"});
  if (b.channels == 0 || b.rows == 0) return;
  describe(be, args.inputs[0]);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnBatchNormalizationForwardInference(
                  be.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, be.tensor_a, dev(args.inputs[0]),
                  be.tensor_a, dev(args.outputs[0]), be.tensor_b, dev(args.inputs[1]), dev(args.inputs[2]),
                  dev(args.inputs[3]), dev(args.inputs[4]), b.epsilon),
              "cudnnBatchNormalizationForwardInference");
}

CUDNN_KERNEL(op_batch_norm_train_backward, "batch_norm_train_backward") {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "mean", "variance", "dy"}, {"dx", "dgamma", "dbeta"});
  if (b.channels == 0) return;
  if (b.rows == 0) {
    fill_device(be, dev(args.outputs[1]), b.channels, 0.0f);
    fill_device(be, dev(args.outputs[2]), b.channels, 0.0f);
    return;
  }
  describe(be, args.inputs[0]);
  Scratch inverse_std(be, b.channels);
  const Launch l = launch_for(be, b.channels);
  inverse_std_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[3]), inverse_std.data(),
                                                            b.channels, float(b.epsilon));
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnBatchNormalizationBackward(
                  be.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, be.tensor_a,
                  dev(args.inputs[0]), be.tensor_a, dev(args.inputs[4]), be.tensor_a, dev(args.outputs[0]),
                  be.tensor_b, dev(args.inputs[1]), dev(args.outputs[1]), dev(args.outputs[2]), b.epsilon,
                  dev(args.inputs[2]), inverse_std.data()),
              "cudnnBatchNormalizationBackward");
}

}  // namespace
}  // namespace lamina::cudnn
