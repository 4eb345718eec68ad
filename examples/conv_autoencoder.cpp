// A convolutional autoencoder on Fashion-MNIST, the seed lecture's unsupervised learning with
// convolutions: the encoder squeezes each 28x28 image through two Conv2D + MaxPooling2D stages into
// a 7x7x8 code (392 numbers, half the pixels), the decoder grows it back to 28x28 with UpSampling2D
// (or Conv2DTranspose with stride 2), and the loss is the mean squared error between the image and
// its reconstruction: no labels. It saves the trained model; `lamina visualize reconstructions`
// draws what it makes of test images (docs/pretraining.md).
//
//   conv_autoencoder [--epochs N] [--decoder upsampling|transpose] [--train N] [-o FILE.h5]
#include <lamina/lamina.hpp>

#include <cstdio>
#include <iostream>
#include <string>

using namespace lamina;
using namespace lamina::layers;

namespace {

Model autoencoder(const std::string& decoder) {
  KerasTensor image = Input({28, 28, 1}, "image");
  KerasTensor x = Conv2D(16, {3, 3}, {.padding = "same", .activation = "relu"})(image);
  x = MaxPooling2D({2, 2})(x);  // 14x14x16
  x = Conv2D(8, {3, 3}, {.padding = "same", .activation = "relu"})(x);
  KerasTensor code = MaxPooling2D({2, 2}, {.name = "code"})(x);  // 7x7x8
  x = code;
  if (decoder == "transpose") {
    // Each stride-2 transposed convolution learns its own upsampling filter.
    x = Conv2DTranspose(8, {3, 3},
                        {.strides = {2, 2}, .padding = "same", .activation = "relu"})(x);  // 14x14x8
    x = Conv2DTranspose(16, {3, 3},
                        {.strides = {2, 2}, .padding = "same", .activation = "relu"})(x);  // 28x28x16
  } else {
    x = Conv2D(8, {3, 3}, {.padding = "same", .activation = "relu"})(x);
    x = UpSampling2D({2, 2})(x);  // 14x14x8
    x = Conv2D(16, {3, 3}, {.padding = "same", .activation = "relu"})(x);
    x = UpSampling2D({2, 2})(x);  // 28x28x16
  }
  KerasTensor reconstruction =
      Conv2D(1, {3, 3}, {.padding = "same", .activation = "sigmoid", .name = "reconstruction"})(x);
  return Model(image, reconstruction, "conv_autoencoder");
}

// The mean squared error of always answering the training set's mean image: what a model that
// learnt nothing about the individual image would score.
double mean_image_mse(const Tensor& train, const Tensor& test) {
  Tensor mean = ops::reduce_sum(train, {0}, true) / float(train.dim(0));
  Tensor d = ops::sub(test, mean);
  return ops::mean(ops::mul(d, d)).to_vector()[0];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int epochs = 5;
    int64_t train_limit = 0;
    std::string decoder = "upsampling", output = "conv_autoencoder.h5";
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--epochs" && i + 1 < argc)
        epochs = std::stoi(argv[++i]);
      else if (a == "--decoder" && i + 1 < argc)
        decoder = argv[++i];
      else if (a == "--train" && i + 1 < argc)
        train_limit = std::stoll(argv[++i]);
      else if (a == "-o" && i + 1 < argc)
        output = argv[++i];
      else
        throw Error("unknown argument '" + a +
                    "'; usage: conv_autoencoder [--epochs N] [--decoder upsampling|transpose] [--train N] "
                    "[-o FILE.h5]");
    }
    if (decoder != "upsampling" && decoder != "transpose")
      throw Error("--decoder must be upsampling or transpose, got '" + decoder + "'");

    auto [train, test] = datasets::fashion_mnist::load_data();
    Tensor x_train = train.x.reshape({-1, 28, 28, 1}) / 255.0f,
           x_test = test.x.reshape({-1, 28, 28, 1}) / 255.0f;
    if (train_limit > 0 && train_limit < x_train.dim(0)) x_train = x_train.slice(0, train_limit);

    Model model = autoencoder(decoder);
    std::cout << model.summary();
    model.compile({.loss = "mean_squared_error", .optimizer = "adam"});
    // The targets are the inputs: the model learns to reproduce what it sees through the 7x7x8 code.
    model.fit(x_train, x_train,
              {.epochs = epochs,
               .batch_size = 64,
               .validation_data = std::make_pair(Tensors{x_test}, Tensors{x_test})});
    const double mse = model.evaluate(x_test, x_test, 256).at("loss");
    std::printf("Test reconstruction MSE: %.5f (the training set's mean image scores %.5f)\n", mse,
                mean_image_mse(x_train, x_test));
    model.save(output);
    std::printf(
        "Saved %s; draw its reconstructions with\n  lamina visualize reconstructions %s --input "
        "fashion_mnist -o reconstructions.png\n",
        output.c_str(), output.c_str());
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
