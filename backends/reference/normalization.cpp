// Batch normalization over the last axis: x (rows, C) row-major, statistics per channel over the rows,
// in double. The variance is the biased one (divided by rows), as Keras computes it.
#include "kernels.hpp"

#include <vector>

namespace lamina::reference {
namespace {

// Per-channel sums over the rows of x (rows, c).
std::vector<double> channel_sums(const float* x, int64_t rows, int64_t c) {
  std::vector<double> s(size_t(c), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) s[size_t(k)] += double(x[r * c + k]);
  return s;
}

// y = gamma·(x − mean)·r + beta, r = 1/√(variance + ε), per channel.
void normalize(const BatchNormArgs& b, const float* x, const float* gamma, const float* beta,
               const std::vector<double>& mean, const std::vector<double>& variance, float* y) {
  std::vector<double> scale(size_t(b.channels)), shift(size_t(b.channels));
  for (int64_t k = 0; k < b.channels; ++k) {
    const double r = 1.0 / std::sqrt(variance[size_t(k)] + b.epsilon);
    scale[size_t(k)] = double(gamma[k]) * r;
    shift[size_t(k)] = double(beta[k]);
  }
  for (int64_t i = 0; i < b.rows; ++i)
    for (int64_t k = 0; k < b.channels; ++k) {
      const size_t c = size_t(k);
      y[i * b.channels + k] = float((double(x[i * b.channels + k]) - mean[c]) * scale[c] + shift[c]);
    }
}

}  // namespace

REFERENCE_KERNEL(batch_norm_train) {
  const BatchNormArgs b = batch_norm_args(args, {"x", "gamma", "beta"}, {"y", "mean", "variance"});
  const float* x = input(args, 0);
  const int64_t c = b.channels;
  std::vector<double> mean = channel_sums(x, b.rows, c), variance(size_t(c), 0.0);
  for (double& m : mean) m = b.rows ? m / double(b.rows) : 0.0;
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const double d = double(x[r * c + k]) - mean[size_t(k)];
      variance[size_t(k)] += d * d;
    }
  for (double& v : variance) v = b.rows ? v / double(b.rows) : 0.0;
  normalize(b, x, input(args, 1), input(args, 2), mean, variance, output(args, 0));
  for (int64_t k = 0; k < c; ++k) {
    output(args, 1)[k] = float(mean[size_t(k)]);
    output(args, 2)[k] = float(variance[size_t(k)]);
  }
}

REFERENCE_KERNEL(batch_norm_inference) {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "beta", "moving_mean", "moving_variance"}, {"y"});
  const float* mean = input(args, 3);
  const float* variance = input(args, 4);
  normalize(b, input(args, 0), input(args, 1), input(args, 2), std::vector<double>(mean, mean + b.channels),
            std::vector<double>(variance, variance + b.channels), output(args, 0));
}

// dbeta = Σ dy, dgamma = Σ dy·x̂, dx = gamma·r/m · (m·dy − dbeta − x̂·dgamma), x̂ = (x − mean)·r.
REFERENCE_KERNEL(batch_norm_train_backward) {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "mean", "variance", "dy"}, {"dx", "dgamma", "dbeta"});
  const float *x = input(args, 0), *gamma = input(args, 1), *mean = input(args, 2),
              *variance = input(args, 3), *dy = input(args, 4);
  const int64_t c = b.channels;
  std::vector<double> r(static_cast<size_t>(c)), dgamma(static_cast<size_t>(c), 0.0),
      dbeta(static_cast<size_t>(c), 0.0);
  for (int64_t k = 0; k < c; ++k) r[size_t(k)] = 1.0 / std::sqrt(double(variance[k]) + b.epsilon);
  for (int64_t i = 0; i < b.rows; ++i)
    for (int64_t k = 0; k < c; ++k) {
      const double g = dy[i * c + k];
      dbeta[size_t(k)] += g;
      dgamma[size_t(k)] += g * (double(x[i * c + k]) - double(mean[k])) * r[size_t(k)];
    }
  float* dx = output(args, 0);
  const double m = double(b.rows);
  for (int64_t i = 0; i < b.rows; ++i)
    for (int64_t k = 0; k < c; ++k) {
      const size_t s = size_t(k);
      const double xhat = (double(x[i * c + k]) - double(mean[k])) * r[s];
      dx[i * c + k] =
          float(double(gamma[k]) * r[s] / m * (m * double(dy[i * c + k]) - dbeta[s] - xhat * dgamma[s]));
    }
  for (int64_t k = 0; k < c; ++k) {
    output(args, 1)[k] = float(dgamma[size_t(k)]);
    output(args, 2)[k] = float(dbeta[size_t(k)]);
  }
}

}  // namespace lamina::reference
