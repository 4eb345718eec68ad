// A small residual network (He et al., "Deep residual learning", 2016) on Fashion-MNIST, written
// with the functional API: each block adds its input to the output of two convolutions, so the
// block learns a correction to the identity. BatchNormalization after every convolution.
// Usage: residual_cnn [EPOCHS] [BATCH_SIZE]   — residual_cnn --json prints the model's Keras JSON
// (examples/residual_cnn.json holds it, with the training settings, for `lamina train`).
#include <lamina/lamina.hpp>

#include <iostream>
#include <string>

using namespace lamina;
using namespace lamina::layers;

namespace {

// BatchNormalization with momentum 0.9 (PyTorch's 0.1): the moving statistics follow weights that
// Adam moves quickly; Keras' 0.99 lags them for the first epochs.
KerasTensor batch_norm(const KerasTensor& x) {
  return BatchNormalization({.momentum = 0.9})(x);
}

// 3x3 convolution, BatchNormalization, ReLU; the convolution needs no bias, BatchNormalization's
// beta is one.
KerasTensor conv_bn_relu(const KerasTensor& x, int64_t filters) {
  KerasTensor y = Conv2D(filters, {3, 3}, {.padding = "same", .use_bias = false})(x);
  return Activation("relu")(batch_norm(y));
}

// relu(x + bn(conv(relu(bn(conv(x)))))): the skip connection carries x past both convolutions.
KerasTensor residual_block(const KerasTensor& x, int64_t filters) {
  KerasTensor y = conv_bn_relu(x, filters);
  y = batch_norm(Conv2D(filters, {3, 3}, {.padding = "same", .use_bias = false})(y));
  return Activation("relu")(Add()({x, y}));
}

Model residual_cnn() {
  KerasTensor inputs = Input({28, 28, 1}, "image");
  KerasTensor x = conv_bn_relu(inputs, 32);  // 28x28x32
  x = residual_block(x, 32);
  x = MaxPooling2D({2, 2})(x);  // 14x14x32
  x = conv_bn_relu(x, 64);      // 14x14x64
  x = residual_block(x, 64);
  x = MaxPooling2D({2, 2})(x);  // 7x7x64
  x = Dropout(0.3)(Flatten()(x));
  KerasTensor outputs = Dense(10, {.activation = "softmax", .name = "probs"})(x);
  return Model(inputs, outputs, "residual_cnn");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1 && std::string(argv[1]) == "--json") {
      std::cout << residual_cnn().to_json() << "\n";
      return 0;
    }
    int epochs = argc > 1 ? std::stoi(argv[1]) : 3;
    int64_t batch_size = argc > 2 ? std::stoll(argv[2]) : 64;
    auto [train, test] = datasets::fashion_mnist::load_data();
    Tensor X_train = train.x.reshape({-1, 28, 28, 1}) / 255.0f,
           X_test = test.x.reshape({-1, 28, 28, 1}) / 255.0f;
    Tensor y_train = to_categorical(train.y), y_test = to_categorical(test.y);

    Model model = residual_cnn();
    std::cout << model.summary();
    model.compile({.loss = "categorical_crossentropy", .optimizer = "adam", .metrics = {"accuracy"}});
    // Adam at 1e-3, then a tenth of it for the last epoch: the large steps find the region, the small
    // ones settle in it.
    auto schedule = std::make_shared<LearningRateScheduler>(
        [epochs](int epoch, double) { return epoch + 1 < epochs ? 1e-3 : 1e-4; });
    model.fit(X_train, y_train,
              {.epochs = epochs,
               .batch_size = batch_size,
               .validation_data = std::make_pair(X_test, y_test),
               .callbacks = {schedule}});
    auto scores = model.evaluate(X_test, y_test, 256);
    std::cout << "Test accuracy: " << scores["accuracy"] << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
