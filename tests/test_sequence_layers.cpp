// The sequence layers (docs/sequences.md): Embedding (the gather op), Conv1D, the 1D poolings,
// LSTM, GRU and Bidirectional. Each is checked against a plain formula written out here, on every
// backend; gradients against finite differences; training; their Keras configs and errors; and the
// real Keras 3 and tf_keras files with Keras' own predictions (tests/data/keras_models_v2).
#include "support.hpp"

#include "../core/src/replay.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

using namespace lamina;
using lamina::test::error_of;
namespace json = boost::json;

namespace {

const std::string kKerasV2 = std::string(LAMINA_SOURCE_DIR) + "/tests/data/keras_models_v2";

Tensor tensor(const std::vector<float>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

Sequential one_layer(const std::string& class_name, json::object config, const Shape& input_shape) {
  config["input_shape"] = layers::detail::to_json_array(input_shape);
  Sequential model;
  model.add(LayerSpec{class_name, config});
  return model;
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// The plain formulas, in double precision, on row-major vectors. x (n, steps, d); W (d, g·u),
// U (u, g·u); the hidden state of every step, in the order of time, each (n, u).
struct Plain {
  int64_t n, steps, d, u;
  std::vector<float> x, W, U, b;  // b: (4u) for LSTM, (2, 3u) or (3u) for GRU
  // x_t·W + b_row (b_row: the bias offset to add, or none) for sample s, gate column j
  double xw(int64_t s, int64_t t, int64_t j, int64_t width, const double* bias) const {
    double v = bias ? bias[j] : 0.0;
    for (int64_t k = 0; k < d; ++k)
      v += double(x[size_t((s * steps + t) * d + k)]) * W[size_t(k * width + j)];
    return v;
  }
  double hu(const std::vector<double>& h, int64_t s, int64_t j, int64_t width) const {
    double v = 0;
    for (int64_t k = 0; k < u; ++k) v += h[size_t(s * u + k)] * U[size_t(k * width + j)];
    return v;
  }
  std::vector<std::vector<double>> lstm(bool backwards) const {
    std::vector<double> bias(b.begin(), b.end());
    std::vector<double> h(size_t(n * u), 0.0), c(size_t(n * u), 0.0);
    std::vector<std::vector<double>> out(static_cast<size_t>(steps));
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = backwards ? steps - 1 - k : k;
      std::vector<double> nh(h.size()), nc(c.size());
      for (int64_t s = 0; s < n; ++s)
        for (int64_t j = 0; j < u; ++j) {
          auto z = [&](int64_t gate) {
            return xw(s, t, gate * u + j, 4 * u, bias.data()) + hu(h, s, gate * u + j, 4 * u);
          };
          const double i = sigmoid(z(0)), f = sigmoid(z(1)), g = std::tanh(z(2)), o = sigmoid(z(3));
          nc[size_t(s * u + j)] = f * c[size_t(s * u + j)] + i * g;
          nh[size_t(s * u + j)] = o * std::tanh(nc[size_t(s * u + j)]);
        }
      h = nh, c = nc;
      out[size_t(t)] = h;
    }
    return out;
  }
  std::vector<std::vector<double>> gru(bool reset_after, bool backwards) const {
    const int64_t w = 3 * u;
    std::vector<double> b_in(b.begin(), b.begin() + w), b_rec(size_t(w), 0.0);
    if (reset_after) b_rec.assign(b.begin() + w, b.end());
    std::vector<double> h(size_t(n * u), 0.0);
    std::vector<std::vector<double>> out(static_cast<size_t>(steps));
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = backwards ? steps - 1 - k : k;
      std::vector<double> nh(h.size());
      for (int64_t s = 0; s < n; ++s) {
        std::vector<double> rh(static_cast<size_t>(u));  // r · h_prev, for reset_after false
        std::vector<double> z(static_cast<size_t>(u)), r(static_cast<size_t>(u));
        for (int64_t j = 0; j < u; ++j) {
          z[size_t(j)] = sigmoid(xw(s, t, j, w, b_in.data()) + hu(h, s, j, w) + b_rec[size_t(j)]);
          r[size_t(j)] = sigmoid(xw(s, t, u + j, w, b_in.data()) + hu(h, s, u + j, w) + b_rec[size_t(u + j)]);
          rh[size_t(j)] = r[size_t(j)] * h[size_t(s * u + j)];
        }
        for (int64_t j = 0; j < u; ++j) {
          double rec;
          if (reset_after) {
            rec = r[size_t(j)] * (hu(h, s, 2 * u + j, w) + b_rec[size_t(2 * u + j)]);
          } else {
            rec = 0;
            for (int64_t q = 0; q < u; ++q) rec += rh[size_t(q)] * U[size_t(q * w + 2 * u + j)];
          }
          const double cand = std::tanh(xw(s, t, 2 * u + j, w, b_in.data()) + rec);
          nh[size_t(s * u + j)] = z[size_t(j)] * h[size_t(s * u + j)] + (1 - z[size_t(j)]) * cand;
        }
      }
      h = nh;
      out[size_t(t)] = h;
    }
    return out;
  }
};

// (n, steps, u) from per-step states in the order given by `order` (time indices).
std::vector<float> sequence(const std::vector<std::vector<double>>& states, const std::vector<int64_t>& order,
                            int64_t n, int64_t u) {
  std::vector<float> y;
  for (int64_t s = 0; s < n; ++s)
    for (int64_t t : order)
      for (int64_t j = 0; j < u; ++j) y.push_back(float(states[size_t(t)][size_t(s * u + j)]));
  return y;
}
std::vector<float> state(const std::vector<double>& h) {
  return std::vector<float>(h.begin(), h.end());
}

std::vector<int64_t> time_order(int64_t steps, bool reversed) {
  std::vector<int64_t> order;
  for (int64_t t = 0; t < steps; ++t) order.push_back(reversed ? steps - 1 - t : t);
  return order;
}

Plain plain_case(int64_t gates, bool gru_reset_after) {
  Plain p{2, 4, 3, 2, {}, {}, {}, {}};
  p.x = test::random_tensor({p.n, p.steps, p.d}, 11).to_vector();
  p.W = test::random_tensor({p.d, gates * p.u}, 12, -0.8f, 0.8f).to_vector();
  p.U = test::random_tensor({p.u, gates * p.u}, 13, -0.8f, 0.8f).to_vector();
  p.b = test::random_tensor({(gru_reset_after ? 2 : 1) * gates * p.u}, 14, -0.5f, 0.5f).to_vector();
  return p;
}

// Every name a model file lists for layer `layer`'s weights.
std::vector<std::string> stored_weight_names(const std::string& path, const std::string& layer) {
  h5::File f(path);
  return f.strings_attribute("model_weights/" + layer, "weight_names");
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Embedding and the gather op

TEST_CASE("Embedding looks each index's row up in its (input_dim, output_dim) table, on every backend") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential model = one_layer("Embedding", {{"input_dim", 4}, {"output_dim", 2}}, {3});
    CHECK(model.output_shape() == Shape{3, 2});
    CHECK(model.layer(0).weight_names() == std::vector<std::string>{"embeddings"});
    model.layer(0).set_weights({tensor({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2})});
    CHECK(model.predict(tensor({3, 0, 3, 1, 2, 2}, {2, 3})).to_vector() ==
          std::vector<float>{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 20, 21});
  }
}

TEST_CASE("Embedding: an index outside the table or not whole is an error naming the layer and the value") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential model = one_layer("Embedding", {{"name", "tokens"}, {"input_dim", 4}, {"output_dim", 2}}, {2});
    std::string e = error_of([&] { model.predict(tensor({1, 4}, {1, 2})); });
    CHECK(e.find("Embedding 'tokens'") != std::string::npos);
    CHECK(e.find("index 4 at position 1") != std::string::npos);
    CHECK(e.find("[0, 4)") != std::string::npos);
    CHECK(error_of([&] { model.predict(tensor({-1, 0}, {1, 2})); }).find("index -1") != std::string::npos);
    CHECK(error_of([&] { model.predict(tensor({0.5f, 0}, {1, 2})); }).find("index 0.5") != std::string::npos);
  }
}

TEST_CASE("Embedding's Keras config: defaults, round trip, mask_zero refused, input_length as the input") {
  set_backend("reference");
  Sequential model = one_layer("Embedding", {{"input_dim", 7}, {"output_dim", 3}}, {5});
  json::object c = model.layer(0).get_config();
  CHECK(c.at("input_dim") == 7);
  CHECK(c.at("output_dim") == 3);
  CHECK(c.at("embeddings_initializer") == "uniform");  // Keras: RandomUniform(-0.05, 0.05)
  CHECK(c.at("mask_zero") == false);
  CHECK(!c.contains("input_length"));
  for (float w : model.layer(0).get_weights()[0].to_vector()) CHECK(std::fabs(w) <= 0.05f);
  Sequential again = one_layer("Embedding", c, {5});
  CHECK(json::value(again.layer(0).get_config()) == json::value(c));

  std::string e = error_of([] {
    one_layer("Embedding", {{"name", "e"}, {"input_dim", 7}, {"output_dim", 3}, {"mask_zero", true}}, {5});
  });
  CHECK(e.find("Embedding 'e'") != std::string::npos);
  CHECK(e.find("'mask_zero'") != std::string::npos);
  CHECK(e.find("masking is not supported") != std::string::npos);
  CHECK(error_of([] {
          one_layer("Embedding", {{"input_dim", 0}, {"output_dim", 3}}, {5});
        }).find("'input_dim'") != std::string::npos);

  // tf_keras: the first layer's input_length gives the input's length; input_dim is the vocabulary
  Sequential first;
  first.add(LayerSpec{"Embedding", {{"input_dim", 50}, {"output_dim", 4}, {"input_length", 6}}});
  CHECK(first.input_shape() == Shape{6});
  CHECK(first.output_shape() == Shape{6, 4});
  CHECK(first.layer(0).get_config().at("input_length") == 6);
  // Keras 3: a Sequential without an InputLayer gives the input in build_input_shape
  Model k3 = Model::from_config(json::parse(R"({"class_name": "Sequential", "config": {"name": "s",
      "build_input_shape": [null, 5],
      "layers": [{"class_name": "Embedding", "config": {"name": "e", "input_dim": 10, "output_dim": 2}}]}})"));
  CHECK(k3.input_shape() == Shape{5});
  CHECK(k3.output_shape() == Shape{5, 2});
}

TEST_CASE("the gather op's gradient is the scatter-add of the output gradient, as finite differences say") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Tensor table = test::random_tensor({4, 3}, 5);
    const Tensor indices = tensor({0, 2, 2, 3, 0, 2}, {2, 3});
    const Tensor r = test::random_tensor({2, 3, 3}, 6);
    table.set_requires_grad(true);
    const Tensor g = gradients(ops::sum(ops::mul(ops::gather(table, indices), r)), {table})[0];
    table.set_requires_grad(false);
    // by hand: row k of the gradient sums r's rows at the positions whose index is k
    std::vector<float> expected(12, 0.0f), rv = r.to_vector();
    const std::vector<float> iv = indices.to_vector();
    for (size_t p = 0; p < iv.size(); ++p)
      for (size_t k = 0; k < 3; ++k) expected[size_t(iv[p]) * 3 + k] += rv[p * 3 + k];
    CHECK(test::max_abs_diff(g.to_vector(), expected) < 1e-5f);
    CHECK(g.to_vector()[3] == 0.0f);  // row 1 is never looked up
    // and the same by central differences
    const float h = 1e-2f;
    std::vector<float> tv = table.to_vector();
    for (size_t i = 0; i < tv.size(); ++i) {
      std::vector<float> p = tv, m = tv;
      p[i] += h, m[i] -= h;
      const double numeric = (ops::sum(ops::mul(ops::gather(tensor(p, {4, 3}), indices), r)).item() -
                              ops::sum(ops::mul(ops::gather(tensor(m, {4, 3}), indices), r)).item()) /
                             (2 * h);
      CHECK(std::fabs(g.to_vector()[i] - numeric) < 1e-3);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Conv1D and the 1D poolings

TEST_CASE("Conv1D: valid, same and causal padding with strides, against the plain sum, on every backend") {
  const int64_t n = 2, steps = 7, c = 3, f = 4, k = 3;
  const Tensor x = test::random_tensor({n, steps, c}, 21);
  const Tensor w = test::random_tensor({k, c, f}, 22), b = test::random_tensor({f}, 23);
  struct Geometry {
    std::string padding;
    int64_t stride, out, before;
  };
  // TensorFlow's "same": ceil(steps / stride) outputs, the odd padding cell after; causal: k - 1 before
  for (const Geometry& g : {Geometry{"valid", 1, 5, 0}, Geometry{"same", 2, 4, 1},
                            Geometry{"causal", 1, 7, 2}, Geometry{"causal", 2, 4, 2}}) {
    CAPTURE(g.padding);
    CAPTURE(g.stride);
    std::vector<float> expected;
    const std::vector<float> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
    for (int64_t s = 0; s < n; ++s)
      for (int64_t t = 0; t < g.out; ++t)
        for (int64_t o = 0; o < f; ++o) {
          double v = bv[size_t(o)];
          for (int64_t dk = 0; dk < k; ++dk) {
            const int64_t at = t * g.stride + dk - g.before;
            if (at < 0 || at >= steps) continue;
            for (int64_t ci = 0; ci < c; ++ci)
              v += double(xv[size_t((s * steps + at) * c + ci)]) * wv[size_t((dk * c + ci) * f + o)];
          }
          expected.push_back(float(std::tanh(v)));
        }
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential model = one_layer("Conv1D",
                                   {{"filters", f},
                                    {"kernel_size", k},
                                    {"strides", g.stride},
                                    {"padding", g.padding},
                                    {"activation", "tanh"}},
                                   {steps, c});
      CHECK(model.output_shape() == Shape{g.out, f});
      CHECK(model.layer(0).weights()[0].shape() == Shape{k, c, f});
      model.layer(0).set_weights({w, b});
      CHECK(test::max_abs_diff(model.predict(x).to_vector(), expected) < 1e-5f);
    }
  }
}

TEST_CASE("Conv1D's config round-trips as Keras writes it; dilation and bad keys are clear errors") {
  set_backend("reference");
  Sequential model =
      one_layer("Conv1D", {{"filters", 2}, {"kernel_size", json::array{3}}, {"padding", "causal"}}, {6, 1});
  json::object c = model.layer(0).get_config();
  CHECK(c.at("kernel_size") == json::parse("[3]"));
  CHECK(c.at("strides") == json::parse("[1]"));
  CHECK(c.at("dilation_rate") == json::parse("[1]"));
  CHECK(c.at("padding") == "causal");
  CHECK(json::value(one_layer("Conv1D", c, {6, 1}).layer(0).get_config()) == json::value(c));
  std::string e = error_of([] {
    one_layer("Conv1D", {{"name", "c"}, {"filters", 2}, {"kernel_size", 3}, {"dilation_rate", 2}}, {6, 1});
  });
  CHECK(e.find("Conv1D 'c'") != std::string::npos);
  CHECK(e.find("dilation_rate") != std::string::npos);
  CHECK(e.find("not supported yet") != std::string::npos);
  CHECK(error_of([] {
          one_layer("Conv1D", {{"filters", 2}, {"kernel_size", 9}}, {6, 1});
        }).find("fewer than the kernel") != std::string::npos);
  CHECK(error_of([] {
          one_layer("Conv1D", {{"filters", 2}, {"kernel_size", 3}, {"padding", "full"}}, {6, 1});
        }).find("'padding'") != std::string::npos);
}

TEST_CASE("MaxPooling1D, AveragePooling1D and the global 1D poolings, on every backend") {
  const Tensor x =
      tensor({1, -1, 5, 2, 3, 0, -2, 4, 7, 1}, {1, 5, 2});  // steps (1,-1) (5,2) (3,0) (-2,4) (7,1)
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    Sequential max = one_layer("MaxPooling1D", {{"pool_size", 2}}, {5, 2});
    CHECK(max.output_shape() == Shape{2, 2});
    CHECK(max.predict(x).to_vector() == std::vector<float>{5, 2, 3, 4});
    // "same": ceil(5 / 2) = 3 windows, the last one holding only step 4
    Sequential avg = one_layer("AveragePooling1D", {{"pool_size", 2}, {"padding", "same"}}, {5, 2});
    CHECK(avg.output_shape() == Shape{3, 2});
    CHECK(test::max_abs_diff(avg.predict(x).to_vector(), {3, 0.5f, 0.5f, 2, 7, 1}) < 1e-6f);
    Sequential overlapping = one_layer("MaxPooling1D", {{"pool_size", 3}, {"strides", 1}}, {5, 2});
    CHECK(overlapping.predict(x).to_vector() == std::vector<float>{5, 2, 5, 4, 7, 4});
    Sequential gmax = one_layer("GlobalMaxPooling1D", {}, {5, 2});
    CHECK(gmax.output_shape() == Shape{2});
    CHECK(gmax.predict(x).to_vector() == std::vector<float>{7, 4});
    Sequential gavg = one_layer("GlobalAveragePooling1D", {{"keepdims", true}}, {5, 2});
    CHECK(gavg.output_shape() == Shape{1, 2});
    CHECK(test::max_abs_diff(gavg.predict(x).to_vector(), {2.8f, 1.2f}) < 1e-6f);
  }
  set_backend("reference");
  json::object c = one_layer("MaxPooling1D", {{"pool_size", json::array{3}}}, {6, 1}).layer(0).get_config();
  CHECK(c.at("pool_size") == json::parse("[3]"));
  CHECK(c.at("strides") == json::parse("[3]"));  // null strides: the pool size, as Keras
  CHECK(c.at("padding") == "valid");
  CHECK(error_of([] {
          one_layer("GlobalMaxPooling1D", {}, {6, 2, 1});
        }).find("(steps, features)") != std::string::npos);
}

// ------------------------------------------------------------------------------------------------
// LSTM, GRU, Bidirectional

TEST_CASE("LSTM steps as Keras' formula says (gates i, f, c, o), forwards and backwards, on every backend") {
  const Plain p = plain_case(4, false);
  const auto forward = p.lstm(false), backward = p.lstm(true);
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    for (bool sequences : {false, true})
      for (bool backwards : {false, true}) {
        CAPTURE(sequences);
        CAPTURE(backwards);
        Sequential model =
            one_layer("LSTM", {{"units", p.u}, {"return_sequences", sequences}, {"go_backwards", backwards}},
                      {p.steps, p.d});
        CHECK(model.output_shape() == (sequences ? Shape{p.steps, p.u} : Shape{p.u}));
        CHECK(model.layer(0).weight_names() ==
              std::vector<std::string>{"lstm_cell/kernel", "lstm_cell/recurrent_kernel", "lstm_cell/bias"});
        model.layer(0).set_weights(
            {tensor(p.W, {p.d, 4 * p.u}), tensor(p.U, {p.u, 4 * p.u}), tensor(p.b, {4 * p.u})});
        const auto& states = backwards ? backward : forward;
        // Keras: the sequence in processing order; the last state processed
        std::vector<float> expected = sequences ? sequence(states, time_order(p.steps, backwards), p.n, p.u)
                                                : state(states[backwards ? 0 : size_t(p.steps - 1)]);
        CHECK(test::max_abs_diff(model.predict(tensor(p.x, {p.n, p.steps, p.d})).to_vector(), expected) <
              1e-5f);
      }
  }
}

TEST_CASE("a hand-checked LSTM and GRU step: one unit, one feature, one step") {
  set_backend("reference");
  // LSTM: x = 2, kernel (i, f, c, o) = (0.5, 1, 0.25, -1), bias (0, 1, 0, 0.5); from h = c = 0:
  // i = σ(1), f = σ(3), g = tanh(0.5), o = σ(-1.5), c = i·g, h = o·tanh(c)
  Sequential lstm = one_layer("LSTM", {{"units", 1}}, {1, 1});
  lstm.layer(0).set_weights(
      {tensor({0.5f, 1, 0.25f, -1}, {1, 4}), tensor({9, 9, 9, 9}, {1, 4}), tensor({0, 1, 0, 0.5f}, {4})});
  const double c = sigmoid(1) * std::tanh(0.5);
  CHECK(lstm.predict(tensor({2}, {1, 1, 1})).item() ==
        doctest::Approx(sigmoid(-1.5) * std::tanh(c)).epsilon(1e-6));
  // GRU, reset_after: kernel (z, r, h) = (1, -1, 0.5), input bias (0, 0, 0.25), recurrent bias
  // (0.5, 0, 1); from h = 0: z = σ(2 + 0.5), r = σ(-2), candidate = tanh(1 + 0.25 + r·1), h = (1 -
  // z)·candidate
  Sequential gru = one_layer("GRU", {{"units", 1}}, {1, 1});
  CHECK(gru.layer(0).weights()[2].shape() == Shape{2, 3});
  gru.layer(0).set_weights(
      {tensor({1, -1, 0.5f}, {1, 3}), tensor({9, 9, 9}, {1, 3}), tensor({0, 0, 0.25f, 0.5f, 0, 1}, {2, 3})});
  const double z = sigmoid(2.5), r = sigmoid(-2);
  CHECK(gru.predict(tensor({2}, {1, 1, 1})).item() ==
        doctest::Approx((1 - z) * std::tanh(1.25 + r)).epsilon(1e-6));
}

TEST_CASE("GRU steps as Keras' formula says (gates z, r, h), reset_after true and false, on every backend") {
  for (bool reset_after : {true, false}) {
    CAPTURE(reset_after);
    const Plain p = plain_case(3, reset_after);
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(backend_name);
      set_backend(backend_name);
      for (bool backwards : {false, true}) {
        CAPTURE(backwards);
        Sequential model = one_layer("GRU",
                                     {{"units", p.u},
                                      {"return_sequences", true},
                                      {"go_backwards", backwards},
                                      {"reset_after", reset_after}},
                                     {p.steps, p.d});
        const Shape bias_shape = reset_after ? Shape{2, 3 * p.u} : Shape{3 * p.u};
        CHECK(model.layer(0).weights()[2].shape() == bias_shape);
        model.layer(0).set_weights(
            {tensor(p.W, {p.d, 3 * p.u}), tensor(p.U, {p.u, 3 * p.u}), tensor(p.b, bias_shape)});
        std::vector<float> expected =
            sequence(p.gru(reset_after, backwards), time_order(p.steps, backwards), p.n, p.u);
        CHECK(test::max_abs_diff(model.predict(tensor(p.x, {p.n, p.steps, p.d})).to_vector(), expected) <
              1e-5f);
      }
    }
  }
}

TEST_CASE("Bidirectional merges the forward and the time-ordered backward states: concat, sum, mul, ave") {
  const Plain p = plain_case(4, false);
  Plain q = p;  // the backward layer's own weights
  q.W = test::random_tensor({p.d, 4 * p.u}, 31, -0.8f, 0.8f).to_vector();
  q.U = test::random_tensor({p.u, 4 * p.u}, 32, -0.8f, 0.8f).to_vector();
  const auto fs = p.lstm(false), bs = q.lstm(true);
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    for (const char* mode : {"concat", "sum", "mul", "ave"})
      for (bool sequences : {true, false}) {
        CAPTURE(mode);
        CAPTURE(sequences);
        json::object inner{{"units", p.u}, {"return_sequences", sequences}};
        json::object wrapped{{"class_name", "LSTM"}, {"config", inner}};
        Sequential model =
            one_layer("Bidirectional", {{"layer", wrapped}, {"merge_mode", mode}}, {p.steps, p.d});
        const bool concat = std::string(mode) == "concat";
        const int64_t width = concat ? 2 * p.u : p.u;
        CHECK(model.output_shape() == (sequences ? Shape{p.steps, width} : Shape{width}));
        CHECK(model.layer(0).weight_names() ==
              std::vector<std::string>{
                  "forward_lstm/lstm_cell/kernel", "forward_lstm/lstm_cell/recurrent_kernel",
                  "forward_lstm/lstm_cell/bias", "backward_lstm/lstm_cell/kernel",
                  "backward_lstm/lstm_cell/recurrent_kernel", "backward_lstm/lstm_cell/bias"});
        model.layer(0).set_weights({tensor(p.W, {p.d, 4 * p.u}), tensor(p.U, {p.u, 4 * p.u}),
                                    tensor(p.b, {4 * p.u}), tensor(q.W, {p.d, 4 * p.u}),
                                    tensor(q.U, {p.u, 4 * p.u}), tensor(q.b, {4 * p.u})});
        // per time step (or the last state each direction processed): forward then backward
        std::vector<float> a, b;
        if (sequences) {
          a = sequence(fs, time_order(p.steps, false), p.n, p.u);
          b = sequence(bs, time_order(p.steps, false), p.n, p.u);
        } else {
          a = state(fs[size_t(p.steps - 1)]);
          b = state(bs[0]);
        }
        std::vector<float> expected;
        for (size_t i = 0; i < a.size(); i += size_t(p.u)) {
          for (int64_t j = 0; j < p.u; ++j) {
            const float x = a[i + size_t(j)], y = b[i + size_t(j)];
            if (!concat)
              expected.push_back(mode == std::string("sum")   ? x + y
                                 : mode == std::string("mul") ? x * y
                                                              : (x + y) / 2);
            else
              expected.push_back(x);
          }
          if (concat)
            for (int64_t j = 0; j < p.u; ++j) expected.push_back(b[i + size_t(j)]);
        }
        CHECK(test::max_abs_diff(model.predict(tensor(p.x, {p.n, p.steps, p.d})).to_vector(), expected) <
              1e-5f);
      }
  }
}

TEST_CASE("LSTM, GRU and Bidirectional have Keras' defaults and config keys, and their configs round-trip") {
  set_backend("reference");
  set_random_seed(4);
  Sequential lstm = one_layer("LSTM", {{"units", 3}}, {5, 2});
  json::object c = lstm.layer(0).get_config();
  CHECK(c.at("activation") == "tanh");
  CHECK(c.at("recurrent_activation") == "sigmoid");
  CHECK(c.at("use_bias") == true);
  CHECK(c.at("unit_forget_bias") == true);
  CHECK(c.at("return_sequences") == false);
  CHECK(c.at("go_backwards") == false);
  CHECK(c.at("kernel_initializer") == "glorot_uniform");
  CHECK(c.at("recurrent_initializer") == "orthogonal");
  CHECK(c.at("dropout") == 0.0);
  // unit_forget_bias: the forget gate's bias starts at one, the others at the bias initializer's zeros
  CHECK(lstm.layer(0).get_weights()[2].to_vector() == std::vector<float>{0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0});
  // orthogonal: the recurrent kernel (3, 12) has orthonormal rows
  const std::vector<float> u = lstm.layer(0).get_weights()[1].to_vector();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double dot = 0;
      for (int k = 0; k < 12; ++k) dot += double(u[size_t(i * 12 + k)]) * u[size_t(j * 12 + k)];
      CHECK(dot == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-5).scale(1));
    }
  CHECK(json::value(one_layer("LSTM", c, {5, 2}).layer(0).get_config()) == json::value(c));

  json::object g = one_layer("GRU", {{"units", 3}}, {5, 2}).layer(0).get_config();
  CHECK(g.at("reset_after") == true);
  CHECK(!g.contains("unit_forget_bias"));
  CHECK(json::value(one_layer("GRU", g, {5, 2}).layer(0).get_config()) == json::value(g));

  json::object wrapped{{"class_name", "GRU"}, {"config", json::object{{"name", "gru"}, {"units", 3}}}};
  json::object b = one_layer("Bidirectional", {{"layer", wrapped}}, {5, 2}).layer(0).get_config();
  CHECK(b.at("merge_mode") == "concat");
  CHECK(b.at("layer").at("class_name") == "GRU");
  CHECK(!b.contains("backward_layer"));
  Sequential again = one_layer("Bidirectional", b, {5, 2});
  CHECK(again.output_shape() == Shape{6});
  CHECK(again.layer(0).weight_names()[0] == "forward_gru/gru_cell/kernel");
}

TEST_CASE("bad recurrent configs give one clear error naming the layer and the key") {
  set_backend("reference");
  json::object lstm{{"class_name", "LSTM"}, {"config", json::object{{"units", 2}}}};
  struct Bad {
    std::string class_name;
    json::object config;
    std::vector<std::string> says;
  };
  const std::vector<Bad> table{
      {"LSTM", {{"name", "l"}, {"units", -3}}, {"LSTM 'l'", "'units'", "positive"}},
      {"GRU", {{"name", "g"}}, {"GRU 'g'", "'units' is missing"}},
      {"Bidirectional",
       {{"name", "b"}, {"layer", lstm}, {"merge_mode", "max"}},
       {"Bidirectional 'b'", "'merge_mode'", "concat"}},
      {"Bidirectional",
       {{"name", "b"}, {"layer", lstm}, {"merge_mode", nullptr}},
       {"Bidirectional 'b'", "'merge_mode'"}},
      {"Bidirectional", {{"name", "b"}}, {"Bidirectional 'b'", "'layer' is missing"}},
      {"Bidirectional",
       {{"name", "b"},
        {"layer", json::object{{"class_name", "Dense"}, {"config", json::object{{"units", 2}}}}}},
       {"Bidirectional 'b'", "'layer'", "LSTM and GRU"}},
      {"LSTM", {{"name", "l"}, {"units", 2}, {"dropout", 0.5}}, {"LSTM 'l'", "'dropout'", "not supported"}},
      {"GRU", {{"name", "g"}, {"units", 2}, {"return_state", true}}, {"GRU 'g'", "'return_state'"}},
      {"LSTM", {{"name", "l"}, {"units", 2}, {"stateful", true}}, {"LSTM 'l'", "'stateful'"}},
      {"LSTM", {{"name", "l"}, {"units", 2}, {"activation", "magic"}}, {"LSTM 'l'", "'activation'", "magic"}},
  };
  for (const Bad& bad : table) {
    CAPTURE(json::serialize(bad.config));
    const std::string e = error_of([&] { one_layer(bad.class_name, bad.config, {4, 3}); });
    for (const std::string& part : bad.says) CHECK_MESSAGE(e.find(part) != std::string::npos, e);
  }
  // a key of the wrapped layer is named through the wrapper
  json::object bad_inner{{"class_name", "LSTM"}, {"config", json::object{{"name", "inner"}, {"units", 0}}}};
  const std::string e = error_of([&] {
    one_layer("Bidirectional", {{"name", "b"}, {"layer", bad_inner}}, {4, 3});
  });
  CHECK(e.find("Bidirectional 'b'") != std::string::npos);
  CHECK(e.find("'units'") != std::string::npos);
}

TEST_CASE("gradients through LSTM, GRU and Bidirectional match finite differences") {
  for (const std::string& backend_name : available_backends()) {
    CAPTURE(backend_name);
    set_backend(backend_name);
    json::object gru_no_reset{{"units", 2}, {"return_sequences", true}, {"reset_after", false}};
    json::object wrapped{{"class_name", "LSTM"},
                         {"config", json::object{{"units", 2}, {"return_sequences", true}}}};
    const std::vector<std::pair<std::string, json::object>> cases{
        {"LSTM", {{"units", 2}, {"return_sequences", true}}},
        {"GRU", {{"units", 2}, {"return_sequences", true}}},
        {"GRU", gru_no_reset},
        {"Bidirectional", {{"layer", wrapped}, {"merge_mode", "mul"}}}};
    for (const auto& item : cases) {
      const std::string& class_name = item.first;
      const json::object& config = item.second;
      CAPTURE(class_name);
      CAPTURE(json::serialize(config));
      set_random_seed(9);
      Sequential model = one_layer(class_name, config, {3, 2});
      Layer& layer = model.layer(0);
      // non-zero biases, so every bias term is exercised
      std::vector<Tensor> weights = layer.get_weights();
      for (size_t k = 0; k < weights.size(); ++k)
        weights[k] = test::random_tensor(weights[k].shape(), 40 + k, -0.7f, 0.7f);
      layer.set_weights(weights);
      Tensor x = test::random_tensor({2, 3, 2}, 7);
      const Tensor r = test::random_tensor(Shape{2, 3, model.output_shape()[1]}, 8);
      auto loss_of = [&](const Tensor& input) { return ops::sum(ops::mul(layer.call(input, true, 0), r)); };
      x.set_requires_grad(true);
      std::vector<Tensor> wrt{x};
      for (const Tensor& w : layer.weights()) wrt.push_back(w);
      const std::vector<Tensor> grads = gradients(loss_of(x), wrt);
      x.set_requires_grad(false);
      NoGradGuard no_grad;
      const float h = 1e-2f;
      auto check = [&](float analytic, double plus, double minus) {
        const double numeric = (plus - minus) / (2 * h);
        CHECK(std::fabs(analytic - numeric) < 2e-3 + 1e-2 * std::fabs(numeric));
      };
      const std::vector<float> xv = x.to_vector(), gx = grads[0].to_vector();
      for (size_t i = 0; i < xv.size(); ++i) {
        std::vector<float> p = xv, m = xv;
        p[i] += h, m[i] -= h;
        check(gx[i], loss_of(tensor(p, x.shape())).item(), loss_of(tensor(m, x.shape())).item());
      }
      for (size_t k = 0; k < weights.size(); ++k) {
        CAPTURE(layer.weight_names()[k]);
        const std::vector<float> w = weights[k].to_vector(), g = grads[k + 1].to_vector();
        for (size_t i = 0; i < w.size(); ++i) {
          std::vector<Tensor> changed = weights;
          std::vector<float> p = w, m = w;
          p[i] += h, m[i] -= h;
          changed[k] = tensor(p, weights[k].shape());
          layer.set_weights(changed);
          const double plus = loss_of(x).item();
          changed[k] = tensor(m, weights[k].shape());
          layer.set_weights(changed);
          const double minus = loss_of(x).item();
          check(g[i], plus, minus);
        }
        layer.set_weights(weights);
      }
    }
  }
}

TEST_CASE("training a small sequence model lowers its loss: Embedding, Conv1D, pooling, LSTM, GRU") {
  // the task: does the sequence of tokens 0..7 hold token 5 anywhere?
  const int64_t samples = 96, steps = 8;
  std::vector<float> tokens, labels;
  Tensor draw = test::random_tensor({samples, steps}, 50, 0.0f, 8.0f);
  for (float v : draw.to_vector()) tokens.push_back(std::floor(v));
  for (int64_t s = 0; s < samples; ++s) {
    bool has = false;
    for (int64_t t = 0; t < steps; ++t) has |= tokens[size_t(s * steps + t)] == 5.0f;
    labels.push_back(has ? 1.0f : 0.0f);
  }
  const Tensor x = tensor(tokens, {samples, steps}), y = tensor(labels, {samples, 1});
  for (const std::string backend_name : {"reference", "onednn"}) {
    CAPTURE(backend_name);
    test::use_backend_or_skip(backend_name);
    set_random_seed(12);
    Sequential model;
    model.add(
        LayerSpec{"InputLayer", {{"batch_input_shape", json::array{nullptr, steps}}, {"dtype", "int32"}}});
    model.add(LayerSpec{"Embedding", {{"input_dim", 8}, {"output_dim", 6}}});
    model.add(LayerSpec{"Conv1D",
                        {{"filters", 8}, {"kernel_size", 3}, {"padding", "causal"}, {"activation", "relu"}}});
    model.add(LayerSpec{"MaxPooling1D", {{"pool_size", 2}}});
    json::object inner{{"units", 6}, {"return_sequences", true}};
    model.add(
        LayerSpec{"Bidirectional", {{"layer", json::object{{"class_name", "LSTM"}, {"config", inner}}}}});
    model.add(LayerSpec{"GRU", {{"units", 6}}});
    model.add(LayerSpec{"Dense", {{"units", 1}, {"activation", "sigmoid"}}});
    model.compile("mean_squared_error", OptimizerSpec("Adam", {{"learning_rate", 0.01}}));
    const double before = model.evaluate({x}, {y}, 32).at("loss");
    History h = model.fit({x}, {y}, {.epochs = 15, .batch_size = 16, .verbose = 0});
    const double after = model.evaluate({x}, {y}, 32).at("loss");
    CAPTURE(before);
    CAPTURE(after);
    CHECK(after < 0.1);  // a constant guess (about 2/3 of the sequences hold a 5) scores 0.23
    CHECK(h.history.at("loss").back() < h.history.at("loss").front());
  }
}

TEST_CASE("fit's step replay repeats the lookups and the recurrent steps: the same training, bit for bit") {
  const Tensor x = tensor({1, 2, 3, 0, 3, 3, 2, 1, 0, 0, 1, 2, 3, 2, 1, 0}, {4, 4});
  const Tensor y = tensor({1, 0, 0, 1}, {4, 1});
  struct Run {
    std::vector<std::vector<float>> weights;
    std::map<std::string, std::vector<double>> history;
    int64_t replayed = 0;
  };
  auto train = [&](bool replay) {
    if (replay)
      unsetenv("LAMINA_STEP_REPLAY");
    else
      setenv("LAMINA_STEP_REPLAY", "0", 1);
    set_random_seed(6);
    Sequential model;
    model.add(LayerSpec{"Embedding", {{"input_dim", 4}, {"output_dim", 3}, {"input_length", 4}}});
    model.add(LayerSpec{"GRU", {{"units", 3}, {"return_sequences", true}}});
    model.add(LayerSpec{"LSTM", {{"units", 2}}});
    model.add(LayerSpec{"Dense", {{"units", 1}}});
    model.compile("mean_squared_error", "sgd");
    const int64_t before = replayed_steps();
    History h = model.fit({x}, {y}, {.epochs = 3, .batch_size = 2, .verbose = 0, .shuffle = false});
    unsetenv("LAMINA_STEP_REPLAY");
    return Run{test::weights_of(model), h.history, replayed_steps() - before};
  };
  for (const std::string backend_name : {"reference", "onednn"}) {
    CAPTURE(backend_name);
    test::use_backend_or_skip(backend_name);
    const Run normal = train(false), replayed = train(true);
    CHECK(normal.replayed == 0);
    CHECK(replayed.replayed > 0);
    CHECK(replayed.weights == normal.weights);
    CHECK(replayed.history == normal.history);
  }
}

// ------------------------------------------------------------------------------------------------
// Real Keras files

TEST_CASE(
    "real Keras files: conv1d_embed (Embedding, causal Conv1D, pooling) and bilstm_gru predict as Keras") {
  const Tensor tokens = test::read_npy(kKerasV2 + "/tokens.input.npy");
  const Tensor images = test::read_npy(kKerasV2 + "/images.input.npy");
  const Tensor rows = images.reshape({256, 28, 28});
  for (const std::string prefix : {"k3_", "tfk2_"}) {
    for (const std::string& backend_name : available_backends()) {
      CAPTURE(prefix);
      CAPTURE(backend_name);
      set_backend(backend_name);
      Sequential embed = load_model(kKerasV2 + "/" + prefix + "conv1d_embed.h5");
      CHECK(embed.input_shape() == Shape{28});
      CHECK(embed.get_layer("embed").weights()[0].shape() == Shape{32, 12});
      CHECK(embed.get_layer("conv_causal").output_shape() == Shape{28, 16});
      CHECK(embed.get_layer("pool").output_shape() == Shape{14, 16});
      CHECK(embed.get_layer("conv_valid").output_shape() == Shape{12, 16});
      const std::vector<float> want_embed =
          test::read_npy(kKerasV2 + "/" + prefix + "conv1d_embed.ref.npy").to_vector();
      const float embed_diff = test::max_abs_diff(embed.predict(tokens, 64).to_vector(), want_embed);
      CAPTURE(embed_diff);
      CHECK(embed_diff < 1e-4f);

      Sequential rnn = load_model(kKerasV2 + "/" + prefix + "bilstm_gru.h5");
      const Layer& bilstm = rnn.get_layer("bilstm");
      CHECK(bilstm.class_name() == "Bidirectional");
      CHECK(bilstm.output_shape() == Shape{28, 32});
      CHECK(bilstm.weight_names()[3] == "backward_lstm/lstm_cell/kernel");
      CHECK(rnn.get_layer("gru").weights()[2].shape() == Shape{2, 48});
      const std::vector<float> want_rnn =
          test::read_npy(kKerasV2 + "/" + prefix + "bilstm_gru.ref.npy").to_vector();
      const float rnn_diff = test::max_abs_diff(rnn.predict(rows, 64).to_vector(), want_rnn);
      CAPTURE(rnn_diff);
      CHECK(rnn_diff < 1e-4f);
    }
  }
}

TEST_CASE("a loaded sequence model saves with Keras' weight names and loads back predicting the same") {
  set_backend("reference");
  const Tensor rows = test::read_npy(kKerasV2 + "/images.input.npy").reshape({256, 28, 28});
  const Tensor tokens = test::read_npy(kKerasV2 + "/tokens.input.npy");
  for (const std::string name : {"k3_bilstm_gru", "tfk2_conv1d_embed"}) {
    CAPTURE(name);
    const bool rnn = name.find("bilstm") != std::string::npos;
    const Tensor& x = rnn ? rows : tokens;
    Sequential model = load_model(kKerasV2 + "/" + name + ".h5");
    const std::string path = test::scratch(name + ".h5");
    model.save(path);
    Sequential again = load_model(path);
    CHECK(again.predict(x, 64).to_vector() == model.predict(x, 64).to_vector());
    CHECK(test::weights_of(again) == test::weights_of(model));
    if (rnn) {
      // tf_keras' names and order: forward then backward, kernel, recurrent_kernel, bias
      CHECK(stored_weight_names(path, "bilstm") ==
            std::vector<std::string>{
                "bilstm/forward_lstm/lstm_cell/kernel:0", "bilstm/forward_lstm/lstm_cell/recurrent_kernel:0",
                "bilstm/forward_lstm/lstm_cell/bias:0", "bilstm/backward_lstm/lstm_cell/kernel:0",
                "bilstm/backward_lstm/lstm_cell/recurrent_kernel:0",
                "bilstm/backward_lstm/lstm_cell/bias:0"});
      CHECK(stored_weight_names(path, "gru") == std::vector<std::string>{"gru/gru_cell/kernel:0",
                                                                         "gru/gru_cell/recurrent_kernel:0",
                                                                         "gru/gru_cell/bias:0"});
      h5::File f(path);
      CHECK(f.info("model_weights/bilstm/bilstm/backward_lstm/lstm_cell/recurrent_kernel:0").shape ==
            Shape{16, 64});
    } else {
      CHECK(stored_weight_names(path, "embed") == std::vector<std::string>{"embed/embeddings:0"});
      CHECK(stored_weight_names(path, "conv_causal") ==
            std::vector<std::string>{"conv_causal/kernel:0", "conv_causal/bias:0"});
    }
  }
}
