#!/usr/bin/python3
"""The PyTorch peer of bench/lamina_bench.cpp: the same two seed workloads, in PyTorch on the CPU.

  torch_seed.py cnn [--samples N] [--batch B] [--epochs E] [--threads T] [--latency K]
      the seed CNN (conv5x5x32 relu, conv5x5x32 relu, maxpool2, flatten, dense128 relu, dense10),
      softmax cross-entropy, Adadelta lr 1.0, on the first N Fashion-MNIST training images; per epoch
      training samples/s, then inference samples/s over the 10,000 test images in batches of 1000 and
      test accuracy; with --latency K, the median time of K single-image predictions.
  torch_seed.py residual [--samples N] [--batch B] [...]
      the same for examples/residual_cnn.json (3x3 convolutions with BatchNormalization, two residual
      blocks, Adam lr 1e-3); run it with --batch 64, the example's batch size.
  torch_seed.py mlp [--epochs E] [--threads T]
      the seed MLP (Dense 100 sigmoid, Dense 100 sigmoid, Dense 1 sigmoid), MSE, SGD lr 0.01, batch 16,
      20,000 2-D points, 5 epochs unless told: training steps/s.

The models, data and loops are those of the shared peer scripts (torch_seed_cnn.py, torch_seed_mlp.py);
the output is "key: value" lines as lamina_bench prints them, for bench/run.py; run_peak_rss_mb is the
peak resident memory of the training and inference, data loading excluded. Run it with Debian's
/usr/bin/python3: the BLAS it uses (reference or OpenBLAS) is reported as `blas:`. With a PyPI torch (bench/run.py runs
both), the BLAS named in its build configuration is reported (MKL on x86)."""
import argparse, gzip, statistics, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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


def blas():
    """The BLAS this torch uses. Debian's links libblas.so.3, whatever the system alternative (or
    LD_LIBRARY_PATH) makes that: the file loaded, in /proc/self/maps, names it. PyPI's wheels link
    their BLAS statically, and their build configuration names it (other libraries in the process,
    such as numpy's own OpenBLAS, are not torch's)."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded
    with open('/proc/self/maps') as f:
        blas_files = {line.split()[-1] for line in f if 'libblas.so' in line}
    for path in sorted(blas_files):
        for name in ('openblas', 'mkl', 'blis', 'atlas'):
            if name in path:
                return name
        return 'reference'
    for part in torch.__config__.show().replace(',', ' ').split():
        if part.startswith('BLAS_INFO='):
            return part.split('=', 1)[1]
    return 'unknown'


class ConvBnRelu(nn.Sequential):
    """3x3 convolution without bias, BatchNormalization (Keras' epsilon 1e-3, momentum 0.9), ReLU."""
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1),
                         nn.ReLU())


class ResidualBlock(nn.Module):
    """relu(x + bn(conv(relu(bn(conv(x)))))), as examples/residual_cnn.cpp."""
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(ConvBnRelu(c, c), nn.Conv2d(c, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c, eps=1e-3, momentum=0.1))

    def forward(self, x):
        return F.relu(x + self.body(x))


def residual_cnn():
    """examples/residual_cnn.json: two residual stages (32 and 64 channels), dropout 0.3, dense 10."""
    return nn.Sequential(ConvBnRelu(1, 32), ResidualBlock(32), nn.MaxPool2d(2), ConvBnRelu(32, 64), ResidualBlock(64),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 10))


def cnn(a):
    Xtr = torch.tensor(idx(f'{a.data}/train-images-idx3-ubyte.gz')[:a.samples, None].astype(np.float32) / 255.0)
    ytr = torch.tensor(idx(f'{a.data}/train-labels-idx1-ubyte.gz')[:a.samples].astype(np.int64))
    Xte = torch.tensor(idx(f'{a.data}/t10k-images-idx3-ubyte.gz')[:, None].astype(np.float32) / 255.0)
    yte = torch.tensor(idx(f'{a.data}/t10k-labels-idx1-ubyte.gz').astype(np.int64))
    if a.mode == 'residual':
        model = residual_cnn()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)  # Keras' Adam epsilon
    else:
        model = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.Conv2d(32, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(3200, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    n = len(Xtr)
    reset_peak_memory()
    for ep in range(a.epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        tot = 0.0
        model.train()
        for i in range(0, n, a.batch):
            idxs = perm[i:i + a.batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(Xtr[idxs]), ytr[idxs])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idxs)
        dt = time.perf_counter() - t0
        model.eval()
        t1 = time.perf_counter()
        with torch.no_grad():
            pred = torch.cat([model(Xte[i:i + 1000]).argmax(1) for i in range(0, len(Xte), 1000)])
        di = time.perf_counter() - t1
        print(f'epoch: {ep + 1} train_s: {dt:.3f} train_samples_per_s: {n / dt:.1f} loss: {tot / n:.4f} '
              f'test_acc: {(pred == yte).float().mean():.4f} infer_samples_per_s: {len(Xte) / di:.1f}', flush=True)
    print(f'run_peak_rss_mb: {peak_memory_mb():.1f}')
    if a.latency > 0:
        times = []
        with torch.no_grad():
            for i in range(a.latency + 5):
                one = Xte[i % 1000: i % 1000 + 1]
                t = time.perf_counter()
                model(one).argmax(1).item()
                if i >= 5:
                    times.append(time.perf_counter() - t)
        print(f'latency_ms: {statistics.median(times) * 1e3:.4f}')


def mlp(a):
    n = 20000
    X = torch.randn(n, 2) * 2
    y = ((X ** 2).sum(1, keepdim=True) < 4).float()
    m = nn.Sequential(nn.Linear(2, 100), nn.Sigmoid(), nn.Linear(100, 100), nn.Sigmoid(), nn.Linear(100, 1),
                      nn.Sigmoid())
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    steps = 0
    reset_peak_memory()
    t0 = time.perf_counter()
    for ep in range(a.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 16):
            idx_ = perm[i:i + 16]
            opt.zero_grad()
            l = ((m(X[idx_]) - y[idx_]) ** 2).mean()
            l.backward()
            opt.step()
            steps += 1
    dt = time.perf_counter() - t0
    print(f'steps: {steps} seconds: {dt:.3f} steps_per_s: {steps / dt:.1f} loss: {l.item():.4f}')
    print(f'run_peak_rss_mb: {peak_memory_mb():.1f}')


p = argparse.ArgumentParser()
p.add_argument('mode', choices=['cnn', 'residual', 'mlp'])
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--samples', type=int, default=60000)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--epochs', type=int, default=None, help='default: 1 for cnn, 5 for mlp')
p.add_argument('--threads', type=int, default=2)
p.add_argument('--latency', type=int, default=0)
a = p.parse_args()
if a.epochs is None:
    a.epochs = 5 if a.mode == 'mlp' else 1
torch.set_num_threads(a.threads)
torch.manual_seed(0)
print(f'torch: {torch.__version__} threads: {torch.get_num_threads()} blas: {blas()}', flush=True)
mlp(a) if a.mode == 'mlp' else cnn(a)
