// The process-wide random source and Keras weight initializers (initializers.cpp).
#pragma once

#include <lamina/tensor.hpp>

#include <boost/json.hpp>

#include <random>
#include <string>

namespace lamina {

// The process-wide random source (weights, shuffling, dropout seeds).
std::mt19937_64& rng();
// Uniform in [0, 1) and standard normal, from raw 64-bit draws: identical on every platform.
double uniform01(std::mt19937_64& g);
double normal01(std::mt19937_64& g);

// Fills `shape` per a Keras initializer (a name or a {class_name, config} object).
Tensor initialize(const boost::json::value& initializer, const Shape& shape, const std::string& where);

}  // namespace lamina
