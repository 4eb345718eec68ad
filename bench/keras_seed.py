#!/usr/bin/env python3
"""The Keras 3 peer of bench/lamina_bench.cpp and bench/torch_seed.py: the same two seed workloads.

  keras_seed.py cnn [--samples N] [--batch B] [--epochs E] [--threads T] [--latency K]
  keras_seed.py mlp [--epochs E] [--threads T]

Run it with the benchmark venv's python (bench/setup_peers.sh); KERAS_BACKEND picks Keras' backend
(default here: jax; tensorflow works too). Output: the "key: value" lines of torch_seed.py, for
bench/run.py.

How it is measured, and what is deliberately the same as or different from the other peers:
- Model: Keras is lamina's programming model, so this is lamina_bench's model written in Keras:
  Conv2D(32, 5, relu), Conv2D(32, 5, relu), MaxPooling2D(2), Flatten, Dense(128, relu),
  Dense(10, softmax), categorical cross-entropy on one-hot labels; Glorot-uniform weights and zero
  biases (Keras' and lamina's default; PyTorch initialises differently). Images are NHWC, as in lamina.
- Optimizer: Adadelta with learning_rate 1.0 and Keras' own rho 0.95 / epsilon 1e-7, which is what
  lamina's "adadelta" uses too (PyTorch's defaults are rho 0.9 / eps 1e-6: the same update at the same
  cost, with other constants). Keras 3's default learning rate is 0.001; the seed models use 1.0.
- Timing: model.fit(..., epochs=1) per epoch, timed around the call, as lamina_bench times its
  Model::fit; so the time includes Keras' own per-epoch overhead (data adapter, callbacks, metric
  updates), which is what a Keras user gets. The jitted train step is built in epoch 1 (and again
  for the last, smaller batch), so epoch 2 - the one bench/run.py reads - runs without compilation.
  Inference: model.predict(x_test, batch_size=1000) timed the same way. Latency: the median of K
  model.predict_on_batch calls on one image (the Keras call for a single batch; predict() adds
  milliseconds of per-call set-up).
- MLP: one untimed warm-up epoch first (it compiles the step; the other peers have no compile
  step), then model.fit(epochs=E, batch_size=16, shuffle=True) timed as a whole: steps/s.
- Threads: --threads T (default 2) limits the process to T CPUs with sched_setaffinity before the
  backend is imported: XLA sizes its CPU thread pools by the CPUs the process may use, and has no
  documented thread-count setting. With the TensorFlow backend, its intra-/inter-op thread counts
  are set to T as well.
- Peak memory: run_peak_rss_mb covers training and inference, data loading and model building
  excluded, as in the other peers (the high-water mark is restarted before training).
"""
import argparse
import gzip
import os
import statistics
import sys
import time

p = argparse.ArgumentParser()
p.add_argument('mode', choices=['cnn', 'mlp'])
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--samples', type=int, default=60000)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--epochs', type=int, default=None, help='default: 1 for cnn, 5 for mlp')
p.add_argument('--threads', type=int, default=2)
p.add_argument('--latency', type=int, default=0)
a = p.parse_args()
if a.epochs is None:
    a.epochs = 1 if a.mode == 'cnn' else 5

# Before the backend is imported: its thread pools are sized when it starts.
os.environ.setdefault('KERAS_BACKEND', 'jax')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')  # the PyPI jax may find CUDA libraries of the torch wheel
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
cpus = sorted(os.sched_getaffinity(0))
if len(cpus) > a.threads:
    os.sched_setaffinity(0, cpus[:a.threads])

import numpy as np  # noqa: E402
import keras  # noqa: E402

if keras.backend.backend() == 'tensorflow':
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = int.from_bytes(data[0:4], 'big') & 0xff
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def reset_peak_memory():
    """Linux restarts the resident-memory high-water mark (VmHWM) when 5 is written to clear_refs."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def peak_memory_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


def cnn():
    x_train = idx(f'{a.data}/train-images-idx3-ubyte.gz')[:a.samples, :, :, None].astype(np.float32) / 255.0
    y_train = keras.utils.to_categorical(idx(f'{a.data}/train-labels-idx1-ubyte.gz')[:a.samples], 10)
    x_test = idx(f'{a.data}/t10k-images-idx3-ubyte.gz')[:, :, :, None].astype(np.float32) / 255.0
    y_test = idx(f'{a.data}/t10k-labels-idx1-ubyte.gz').astype(np.int64)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 5, activation='relu'),
        keras.layers.Conv2D(32, 5, activation='relu'),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation='relu'),
        keras.layers.Dense(10, activation='softmax'),
    ])
    model.compile(loss='categorical_crossentropy',
                  optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7))
    n = len(x_train)
    reset_peak_memory()
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        h = model.fit(x_train, y_train, batch_size=a.batch, epochs=1, shuffle=True, verbose=0)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = model.predict(x_test, batch_size=1000, verbose=0)
        di = time.perf_counter() - t1
        acc = float((pred.argmax(1) == y_test).mean())
        print(f'epoch: {ep + 1} train_s: {dt:.3f} train_samples_per_s: {n / dt:.1f} loss: {h.history["loss"][-1]:.4f} '
              f'test_acc: {acc:.4f} infer_samples_per_s: {len(x_test) / di:.1f}', flush=True)
    print(f'run_peak_rss_mb: {peak_memory_mb():.1f}')
    if a.latency > 0:
        times = []
        for i in range(a.latency + 5):
            one = x_test[i % 1000: i % 1000 + 1]
            t = time.perf_counter()
            int(np.asarray(model.predict_on_batch(one)).argmax(1)[0])
            if i >= 5:  # the first calls build the batch-1 program
                times.append(time.perf_counter() - t)
        print(f'latency_ms: {statistics.median(times) * 1e3:.4f}')


def mlp():
    n = 20000
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, 2)) * 2).astype(np.float32)
    y = ((X ** 2).sum(1, keepdims=True) < 4).astype(np.float32)
    m = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(100, activation='sigmoid'),
        keras.layers.Dense(100, activation='sigmoid'),
        keras.layers.Dense(1, activation='sigmoid'),
    ])
    m.compile(loss='mean_squared_error', optimizer=keras.optimizers.SGD(learning_rate=0.01))
    m.fit(X, y, batch_size=16, epochs=1, shuffle=True, verbose=0)  # warm-up: compiles the step
    reset_peak_memory()
    t0 = time.perf_counter()
    h = m.fit(X, y, batch_size=16, epochs=a.epochs, shuffle=True, verbose=0)
    dt = time.perf_counter() - t0
    steps = a.epochs * ((n + 15) // 16)
    print(f'steps: {steps} seconds: {dt:.3f} steps_per_s: {steps / dt:.1f} loss: {h.history["loss"][-1]:.4f}')
    print(f'run_peak_rss_mb: {peak_memory_mb():.1f}')


backend_version = {'jax': lambda: __import__('jax').__version__,
                   'tensorflow': lambda: __import__('tensorflow').__version__,
                   'torch': lambda: __import__('torch').__version__}.get(keras.backend.backend(), lambda: '?')()
print(f'keras: {keras.__version__} backend: {keras.backend.backend()} {backend_version} '
      f'threads: {len(os.sched_getaffinity(0))}', flush=True)
keras.utils.set_random_seed(0)
cnn() if a.mode == 'cnn' else mlp()
sys.stdout.flush()
