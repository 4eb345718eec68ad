// Keras-style constructors for the built-in optimizers (the code lives in a plugin).
#pragma once

#include <lamina/model.hpp>

namespace lamina::optimizers {

struct SGDOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
};
inline OptimizerSpec SGD(const SGDOptions& o = {}) {
  return {"SGD", {{"learning_rate", o.learning_rate}, {"momentum", o.momentum}, {"nesterov", o.nesterov}}};
}

// lamina follows Keras 2 (the seed's Keras): Adadelta's default learning rate is 1.0.
struct AdadeltaOptions {
  double learning_rate = 1.0;
  double rho = 0.95;
  double epsilon = 1e-7;
};
inline OptimizerSpec Adadelta(const AdadeltaOptions& o = {}) {
  return {"Adadelta", {{"learning_rate", o.learning_rate}, {"rho", o.rho}, {"epsilon", o.epsilon}}};
}

struct AdamOptions {
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};
inline OptimizerSpec Adam(const AdamOptions& o = {}) {
  return {"Adam",
          {{"learning_rate", o.learning_rate}, {"beta_1", o.beta_1}, {"beta_2", o.beta_2}, {"epsilon", o.epsilon}}};
}

struct RMSpropOptions {
  double learning_rate = 0.001;
  double rho = 0.9;
  double epsilon = 1e-7;
};
inline OptimizerSpec RMSprop(const RMSpropOptions& o = {}) {
  return {"RMSprop", {{"learning_rate", o.learning_rate}, {"rho", o.rho}, {"epsilon", o.epsilon}}};
}

}  // namespace lamina::optimizers
