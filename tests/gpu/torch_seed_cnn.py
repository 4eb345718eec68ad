#!/usr/bin/env python3
"""The seed CNN of examples/mnist_cnn.json in PyTorch, trained the way `lamina train` trains it, as
the baseline tests/gpu/run.sh times the cudnn backend against.

Same model (conv 5x5x32 relu, conv 5x5x32 relu, max-pool 2x2, flatten, dense 128 relu, dense 10
softmax), initialisation (Glorot-uniform kernels, zero biases), loss (categorical cross-entropy
from the logits), optimizer (Adadelta: lr 1.0, rho 0.95, epsilon 1e-7), batch size 32, shuffling,
and the same per-step work as a Keras-style log: the loss and the accuracy of every batch are read
back to the host each step. The data set lives on the GPU (a PyTorch user's fastest setup; lamina
copies each batch from the host).

Prints one JSON object: train seconds (the epoch loop only), samples/s, the train loss and
accuracy, and the validation loss and accuracy on the test split.
"""
import argparse
import gzip
import json
import os
import sys
import time

import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder, split):
    x = read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"))
    return x, y


def seed_cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(),
        nn.Conv2d(32, 32, 5), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 10 * 10, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)  # Keras' glorot_uniform
            nn.init.zeros_(m.bias)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with the four Fashion-MNIST .gz files")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--tf32", type=int, default=0,
                   help="1: PyTorch's default for convolutions (TF32 tensor cores); 0: plain float32 everywhere")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "PyTorch sees no CUDA device", "torch": torch.__version__}))
        return 2
    torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    to_x = lambda a: (a.float() / 255.0).reshape(-1, 1, 28, 28).to(device)
    to_y = lambda a: a.long().to(device)
    xt, yt, xv, yv = to_x(x_train), to_y(y_train), to_x(x_test), to_y(y_test)

    model = seed_cnn().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    n = xt.shape[0]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "tf32": bool(args.tf32), "samples": n, "epochs": []}
    for epoch in range(args.epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        loss_sum, correct = 0.0, 0
        for b in range(0, n, args.batch_size):
            idx = order[b : b + args.batch_size]
            xb, yb = xt[idx], yt[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # What a Keras-style log reads back every step.
            loss_sum += loss.item() * xb.shape[0]
            correct += int((logits.argmax(1) == yb).sum().item())
        sync()
        train_seconds = time.perf_counter() - start

        model.eval()
        start = time.perf_counter()
        val_loss, val_correct = 0.0, 0
        with torch.no_grad():
            for b in range(0, xv.shape[0], args.batch_size):
                logits = model(xv[b : b + args.batch_size])
                yb = yv[b : b + args.batch_size]
                val_loss += loss_fn(logits, yb).item() * yb.shape[0]
                val_correct += int((logits.argmax(1) == yb).sum().item())
        sync()
        result["epochs"].append({
            "train_seconds": round(train_seconds, 3),
            "samples_per_second": round(n / train_seconds, 1),
            "loss": round(loss_sum / n, 4),
            "accuracy": round(correct / n, 4),
            "val_seconds": round(time.perf_counter() - start, 3),
            "val_loss": round(val_loss / xv.shape[0], 4),
            "val_accuracy": round(val_correct / xv.shape[0], 4),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
