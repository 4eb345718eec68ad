// The seed lecture's first program: a 2-layer network on a 2-D problem, line by line as in Keras.
//
//   clf = Sequential()
//   clf.add(Dense(100, input_dim=2, activation='sigmoid'))
//   clf.add(Dense(100, activation='sigmoid'))
//   clf.add(Dense(1, activation='sigmoid'))
//   clf.compile(loss='mean_squared_error', optimizer='sgd')
//   clf.fit(X, y, epochs=20, batch_size=16)
#include <lamina/lamina.hpp>

#include <cmath>
#include <iostream>
#include <random>

using namespace lamina;
using namespace lamina::layers;

// Two Gaussian clouds in the plane: class 1 around (1, -1), class 0 around (-2, -3).
static std::pair<Tensor, Tensor> make_problem(int n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> noise(0.0f, 1.2f);
  std::vector<float> x, y;
  for (int i = 0; i < n; ++i) {
    bool positive = i % 2 == 0;
    x.push_back((positive ? 1.0f : -2.0f) + noise(g));
    x.push_back((positive ? -1.0f : -3.0f) + noise(g));
    y.push_back(positive ? 1.0f : 0.0f);
  }
  return {Tensor::from_vector(x, {n, 2}), Tensor::from_vector(y, {n, 1})};
}

int main() {
  try {
    auto [X, y] = make_problem(1000, 42);

    Sequential clf;
    clf.add(Dense(100, {.input_dim = 2, .activation = "sigmoid"}));
    clf.add(Dense(100, {.activation = "sigmoid"}));
    clf.add(Dense(1, {.activation = "sigmoid"}));
    clf.compile("mean_squared_error", "sgd");
    History history = clf.fit(X, y, {.epochs = 20, .batch_size = 16});

    Tensor probabilities = clf.predict(Tensor::from_vector({1, -2, -3, -5}, {2, 2}));
    std::cout << "Probabilities:\n" << probabilities << "\n";
    std::cout << "Classes:\n" << (probabilities > 0.5f) << "\n";
    auto& loss = history.history["loss"];
    std::cout << "loss went from " << loss.front() << " to " << loss.back() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
