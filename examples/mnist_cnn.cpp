// The seed lecture's convnet (modified from Keras' mnist_cnn.py), line by line.
// Usage: mnist_cnn [EPOCHS] [MNIST_FOLDER]   — without a folder it trains on Fashion-MNIST.
#include <lamina/lamina.hpp>

#include <iostream>
#include <string>

using namespace lamina;
using namespace lamina::layers;

int main(int argc, char** argv) {
  try {
    int num_epochs = argc > 1 ? std::stoi(argv[1]) : 10;  // Show all samples this many times
    std::string folder = argc > 2 ? argv[2] : "";

    // 60000 training and 10000 test images of size 28x28
    auto [train, test] =
        folder.empty() ? datasets::fashion_mnist::load_data() : datasets::mnist::load_data(folder);

    // lamina assumes 4D input, but MNIST is lacking a colour channel: add a dummy dimension at the end.
    Tensor X_train = train.x.reshape({-1, 28, 28, 1}) / 255.0f;
    Tensor X_test = test.x.reshape({-1, 28, 28, 1}) / 255.0f;

    // Output has to be one-hot-encoded
    Tensor y_train = to_categorical(train.y);
    Tensor y_test = to_categorical(test.y);

    int num_filters = 32;  // This many filters per layer
    int num_classes = 10;  // Digits 0,1,...,9
    int64_t w = 5, h = 5;  // Conv window size

    Sequential model;
    // Layer 1: needs input_shape as well.
    model.add(Conv2D(num_filters, {w, h}, {.activation = "relu", .input_shape = {28, 28, 1}}));
    // Layer 2:
    model.add(Conv2D(num_filters, {w, h}, {.activation = "relu"}));
    model.add(MaxPooling2D({2, 2}));
    // Layer 3: dense layer with 128 nodes. Flatten() vectorizes the data: 32x10x10 -> 3200
    model.add(Flatten());
    model.add(Dense(128, {.activation = "relu"}));
    // Layer 4: Last layer producing 10 outputs.
    model.add(Dense(num_classes, {.activation = "softmax"}));
    std::cout << model.summary();

    // Compile and train
    model.compile({.loss = "categorical_crossentropy", .optimizer = "adadelta", .metrics = {"accuracy"}});
    model.fit(X_train, y_train, {.epochs = num_epochs, .validation_data = std::make_pair(X_test, y_test)});
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
