"""Writes the small Keras models of tests/data/keras_convs: dilated, grouped, depthwise and
separable convolutions, saved with Keras 3 and with tf_keras, with an input and Keras' own
predictions for it.

    python make_models.py            # in a virtual environment with keras (3.x) and tf_keras

Each writer gets the same architecture and the same weights (drawn from one seeded generator, so
that every weight, biases included, is non-zero), and the same input. Outputs:
    k3_modern_convs.h5, tfk2_modern_convs.h5   the model files (model.save)
    modern_convs.input.npy                     float32 (8, 9, 9, 4)
    k3_modern_convs.ref.npy, tfk2_modern_convs.ref.npy   each writer's predict(input)
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = (9, 9, 4)


def build(k):
    L = k.layers
    model = k.Sequential(
        [
            k.Input(shape=SHAPE),
            # 9x9x4 -> 9x9x6: a 3x3 kernel with taps two apart (a 5x5 span), "same"
            L.Conv2D(6, 3, dilation_rate=2, padding="same", activation="relu", name="dilated"),
            # 9x9x6 -> 7x7x6: two groups of 3 input and 3 output channels
            L.Conv2D(6, 3, groups=2, activation="tanh", name="grouped"),
            # 7x7x6 -> 7x7x12: output channel c*2 + m from input channel c
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise"),
            # 7x7x12 -> 5x4x12: dilated depthwise (spans 3x4), "valid", without a bias
            L.DepthwiseConv2D(2, dilation_rate=(2, 3), use_bias=False, activation="sigmoid", name="depthwise_dilated"),
            # 5x4x12 -> 3x2x5: depthwise 3x3 stride 2 "same" (multiplier 2), then 1x1 to 5 channels
            L.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2, activation="relu",
                              name="separable"),
        ]
    )
    rng = np.random.default_rng(7)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def main():
    x = np.random.default_rng(1).uniform(-1, 1, (8,) + SHAPE).astype("float32")
    np.save(os.path.join(HERE, "modern_convs.input.npy"), x)

    import keras

    model = build(keras)
    model.save(os.path.join(HERE, "k3_modern_convs.h5"))
    np.save(os.path.join(HERE, "k3_modern_convs.ref.npy"), model.predict(x, verbose=0).astype("float32"))
    print("keras", keras.__version__, model.output_shape)

    import tf_keras

    model = build(tf_keras)
    model.save(os.path.join(HERE, "tfk2_modern_convs.h5"))
    np.save(os.path.join(HERE, "tfk2_modern_convs.ref.npy"), model.predict(x, verbose=0).astype("float32"))
    print("tf_keras", tf_keras.__version__, model.output_shape)


if __name__ == "__main__":
    main()
