// Keras weight initializers and lamina's random source.
#include "initializers.hpp"
#include "plugins.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/backend.hpp>

#include <algorithm>
#include <cmath>

namespace lamina {

std::mt19937_64& rng() {
  static std::mt19937_64 generator(1337);
  return generator;
}
void set_random_seed(uint64_t seed) { rng().seed(seed); }

// Own conversions rather than std:: distributions, whose output differs between standard libraries.
double uniform01(std::mt19937_64& g) { return double(g() >> 11) * (1.0 / 9007199254740992.0); }
double normal01(std::mt19937_64& g) {
  double u1 = uniform01(g), u2 = uniform01(g);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

namespace {

struct Fans {
  double in, out;
};
Fans fans(const Shape& s) {
  if (s.empty()) return {1, 1};
  if (s.size() == 1) return {double(s[0]), double(s[0])};
  if (s.size() == 2) return {double(s[0]), double(s[1])};
  double receptive = 1;  // conv kernels (kh, kw, in, out)
  for (size_t i = 0; i + 2 < s.size(); ++i) receptive *= double(s[i]);
  return {receptive * double(s[s.size() - 2]), receptive * double(s[s.size() - 1])};
}

double number(const boost::json::object& c, const char* key, double fallback) {
  auto* v = c.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return double(v->as_int64());
  if (v->is_uint64()) return double(v->as_uint64());
  throw Error(std::string("initializer key '") + key + "' must be a number");
}

// Truncated at two standard deviations, as Keras' truncated_normal.
double truncated(std::mt19937_64& g) {
  for (;;) {
    double x = normal01(g);
    if (std::fabs(x) <= 2.0) return x;
  }
}

// Keras' Orthogonal: a (rows, cols) matrix with orthonormal rows or columns (rows = the product of
// every axis but the last), from the QR decomposition of a normal draw with R's diagonal made
// positive; modified Gram-Schmidt gives that Q directly.
std::vector<float> orthogonal(std::mt19937_64& g, const Shape& shape, double gain, const std::string& where) {
  if (shape.size() < 2)
    throw Error(where + ": the Orthogonal initializer needs a weight of rank 2 or more, got " +
                shape_to_string(shape));
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  const int64_t cols = shape.back(), m = std::max(rows, cols), n = std::min(rows, cols);
  std::vector<double> a(size_t(m * n));  // column j is a[j*m .. j*m + m)
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) a[size_t(j * m + i)] = normal01(g);
  for (int64_t j = 0; j < n; ++j) {
    double* q = a.data() + j * m;
    for (int64_t k = 0; k < j; ++k) {
      const double* p = a.data() + k * m;
      double dot = 0;
      for (int64_t i = 0; i < m; ++i) dot += p[i] * q[i];
      for (int64_t i = 0; i < m; ++i) q[i] -= dot * p[i];
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += q[i] * q[i];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < m; ++i) q[i] /= norm > 0 ? norm : 1.0;
  }
  std::vector<float> v(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)  // rows >= cols: Q itself; otherwise its transpose
      v[size_t(r * cols + c)] = float(gain * (rows >= cols ? a[size_t(c * m + r)] : a[size_t(r * m + c)]));
  return v;
}

}  // namespace

Tensor initialize(const boost::json::value& init, const Shape& shape, const std::string& where) {
  std::string name;
  boost::json::object config;
  if (init.is_string()) {
    name = std::string(init.as_string());
  } else if (init.is_object() && init.as_object().contains("class_name")) {
    if (!init.as_object().at("class_name").is_string())
      throw Error(where + ": initializer class_name must be a string, got " +
                  boost::json::serialize(init).substr(0, 80));
    name = std::string(init.as_object().at("class_name").as_string());
    if (auto* c = init.as_object().if_contains("config"); c && c->is_object()) config = c->as_object();
  } else if (init.is_null()) {
    name = "zeros";
  } else {
    throw Error(where + ": initializer must be a name or a {\"class_name\", \"config\"} object, got " +
                boost::json::serialize(init));
  }
  std::string key;
  for (char c : name)
    if (c != '_') key += char(std::tolower(static_cast<unsigned char>(c)));

  // Map every name onto (kind, scale, mode, distribution) like Keras' VarianceScaling.
  std::string distribution, mode;
  double scale = 1.0;
  if (key == "glorotuniform") distribution = "uniform", mode = "fan_avg";
  else if (key == "glorotnormal") distribution = "truncated_normal", mode = "fan_avg";
  else if (key == "heuniform") distribution = "uniform", mode = "fan_in", scale = 2.0;
  else if (key == "henormal") distribution = "truncated_normal", mode = "fan_in", scale = 2.0;
  else if (key == "lecununiform") distribution = "uniform", mode = "fan_in";
  else if (key == "lecunnormal") distribution = "truncated_normal", mode = "fan_in";
  else if (key == "variancescaling") {
    scale = number(config, "scale", 1.0);
    auto text = [&](const char* key, const char* fallback) {
      if (!config.contains(key)) return std::string(fallback);
      if (!config.at(key).is_string())
        throw Error(where + ": VarianceScaling '" + key + "' must be a string, got " +
                    boost::json::serialize(config.at(key)).substr(0, 40));
      return std::string(config.at(key).as_string());
    };
    mode = text("mode", "fan_in");
    distribution = text("distribution", "truncated_normal");
    if (distribution == "normal") distribution = "truncated_normal";
  }

  // A seeded initializer draws from its own stream and leaves the global one untouched.
  std::mt19937_64 seeded;
  std::mt19937_64* source = &rng();
  if (auto* seed = config.if_contains("seed"); seed && seed->is_int64()) {
    seeded.seed(uint64_t(seed->as_int64()));
    source = &seeded;
  }
  std::mt19937_64& g = *source;
  std::vector<float> v(size_t(shape_size(shape)));
  if (!distribution.empty()) {
    Fans f = fans(shape);
    double n = mode == "fan_in" ? f.in : mode == "fan_out" ? f.out : (f.in + f.out) / 2.0;
    if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg")
      throw Error(where + ": VarianceScaling mode must be fan_in, fan_out or fan_avg, not '" + mode + "'");
    double s = scale / std::max(1.0, n);
    if (distribution == "uniform") {
      double limit = std::sqrt(3.0 * s);
      for (float& x : v) x = float((2.0 * uniform01(g) - 1.0) * limit);
    } else if (distribution == "truncated_normal") {
      double stddev = std::sqrt(s) / 0.87962566103423978;
      for (float& x : v) x = float(truncated(g) * stddev);
    } else if (distribution == "untruncated_normal") {
      double stddev = std::sqrt(s);
      for (float& x : v) x = float(normal01(g) * stddev);
    } else {
      throw Error(where + ": VarianceScaling distribution '" + distribution + "' is not known");
    }
  } else if (key == "zeros" || key == "zero") {
    std::fill(v.begin(), v.end(), 0.0f);
  } else if (key == "ones" || key == "one") {
    std::fill(v.begin(), v.end(), 1.0f);
  } else if (key == "constant") {
    std::fill(v.begin(), v.end(), float(number(config, "value", 0.0)));
  } else if (key == "randomnormal" || key == "normal") {
    double mean = number(config, "mean", 0.0), stddev = number(config, "stddev", 0.05);
    for (float& x : v) x = float(mean + stddev * normal01(g));
  } else if (key == "truncatednormal") {
    double mean = number(config, "mean", 0.0), stddev = number(config, "stddev", 0.05);
    for (float& x : v) x = float(mean + stddev * truncated(g));
  } else if (key == "orthogonal") {
    v = orthogonal(g, shape, number(config, "gain", 1.0), where);
  } else if (key == "laminablocks") {
    // lamina's own, for layers whose Keras initialisation differs by part (LSTM's unit_forget_bias):
    // {"class_name": "lamina_blocks", "config": {"blocks": [{"size": n, "initializer": ...}, ...]}},
    // consecutive parts of a rank-1 weight. Never written to a file: layers save their Keras keys.
    auto* blocks = config.if_contains("blocks");
    if (shape.size() != 1 || !blocks || !blocks->is_array())
      throw Error(where + ": lamina_blocks needs a rank-1 weight and a 'blocks' list");
    v.clear();
    for (const auto& b : blocks->as_array()) {
      if (!b.is_object() || !b.as_object().contains("size") || !b.as_object().at("size").is_int64() ||
          !b.as_object().contains("initializer"))
        throw Error(where + ": each lamina_blocks entry needs an integer 'size' and an 'initializer'");
      Shape part{b.as_object().at("size").as_int64()};
      std::vector<float> pv = initialize(b.as_object().at("initializer"), part, where).to_vector();
      v.insert(v.end(), pv.begin(), pv.end());
    }
    if (int64_t(v.size()) != shape[0])
      throw Error(where + ": lamina_blocks sizes add up to " + std::to_string(v.size()) + ", not " +
                  std::to_string(shape[0]));
  } else if (key == "randomuniform" || key == "uniform") {
    double lo = number(config, "minval", -0.05), hi = number(config, "maxval", 0.05);
    for (float& x : v) x = float(lo + (hi - lo) * uniform01(g));
  } else {
    throw Error(
        where + ": unknown initializer '" + name +
        "' (known: glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, "
        "zeros, ones, constant, random_normal, random_uniform, truncated_normal, orthogonal, "
        "VarianceScaling)");
  }
  Tensor t = make_tensor(shape, &Registry::get().active_backend());
  assign(t, Tensor::from_vector(v, shape));
  return t;
}

}  // namespace lamina
