#!/usr/bin/env python3
"""The seed CNN of examples/mnist_cnn.json in PyTorch, trained the way `lamina train` trains it, as
the baseline tests/gpu/run.sh times the cudnn backend against.

Same model (conv 5x5x32 relu, conv 5x5x32 relu, max-pool 2x2, flatten, dense 128 relu, dense 10
softmax), initialisation (Glorot-uniform kernels, zero biases), loss (categorical cross-entropy
from the logits), optimizer (Adadelta: lr 1.0, rho 0.95, epsilon 1e-7), batch size 32, shuffling,
and the same per-step work as a Keras-style log: the loss and the accuracy of every batch are read
back to the host each step. The data set lives on the GPU (a PyTorch user's fastest setup; lamina
copies each batch from the host).

Prints one JSON line per batch size: train seconds (the epoch loop only), samples/s, the train loss
and accuracy, and the validation loss and accuracy on the test split. Several batch sizes
(`--batch-size 32,128`) run one after the other in one process, each from the same initial weights
and the same shuffling seed; only the first one pays for PyTorch's first use of the GPU.

`--compile` runs the model through `torch.compile` (Inductor). Before each timed epoch, every batch
shape the epoch will see goes through the compiled model once, forward and backward, untimed: the
JSON line reports that as `compile_seconds`, and the epoch's figures are those of a compiled model,
as in a second epoch. When torch.compile cannot be used (no Triton, no C compiler, ...), the script
prints a JSON line with "error" and the reason on one line, and exits with status 3.
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


def batch_sizes(text):
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of positive batch sizes")
    return sizes


def one_line(error):
    """The innermost cause of an exception, as 'Type: first line of its message'. torch.compile
    wraps the real reason (e.g. a missing Triton) in exceptions whose own first line says little
    ("backend='inductor' raised:"), keeping it as inner_exception or as the cause."""
    for _ in range(10):
        inner = getattr(error, "inner_exception", None) or error.__cause__
        if not isinstance(inner, BaseException):
            break
        error = inner
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def validate(net, loss_fn, xv, yv, batch_size):
    """The validation pass: the loss and the number of right answers on the test split."""
    net.eval()
    val_loss, val_correct = 0.0, 0
    with torch.no_grad():
        for b in range(0, xv.shape[0], batch_size):
            logits = net(xv[b : b + batch_size])
            yb = yv[b : b + batch_size]
            val_loss += loss_fn(logits, yb).item() * yb.shape[0]
            val_correct += int((logits.argmax(1) == yb).sum().item())
    return val_loss, val_correct


def warm_up(net, loss_fn, xt, yt, xv, yv, batch_size):
    """Puts each batch shape of the coming epoch through the compiled model once, so that nothing
    compiles while the epoch is timed: a full and the last partial training batch, forward and
    backward (gathered by an index, as the epoch's batches are), and the whole validation pass. No
    optimizer step: the weights stay as they are, and the gradients are dropped."""
    n = xt.shape[0]
    net.train()
    for size in sorted({min(batch_size, n), n % batch_size} - {0}):
        idx = torch.arange(size, device=xt.device)
        loss_fn(net(xt[idx]), yt[idx]).backward()
    net.zero_grad(set_to_none=True)
    validate(net, loss_fn, xv, yv, batch_size)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with the four Fashion-MNIST .gz files")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=batch_sizes, default=[32],
                   help="batch size, or several separated by commas (one JSON line each)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--tf32", type=int, default=0,
                   help="1: PyTorch's default for convolutions (TF32 tensor cores); 0: plain float32 everywhere")
    p.add_argument("--compile", action="store_true",
                   help="train the torch.compile'd model; compiling happens before the clock starts")
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

    # One model for every batch size, reset to the same initial weights before each: a compiled
    # model then compiles once, not once per batch size.
    model = seed_cnn().to(device)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss()
    n = xt.shape[0]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    header = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "tf32": bool(args.tf32), "compile": args.compile, "samples": n}

    def compile_failed(error, batch_size):
        """Reports why torch.compile cannot be used, on one line; run.sh goes on with eager only."""
        reason = f"torch.compile failed: {one_line(error)}"
        print(reason, file=sys.stderr)
        print(json.dumps(dict(header, batch_size=batch_size, error=reason)), flush=True)
        return 3

    net = model
    if args.compile:
        # dynamic=True: one compiled graph per mode (training, evaluation) serves every batch shape
        # (full, last partial, validation, each batch size); this is what torch.compile switches to
        # by itself once it has seen a second shape.
        try:
            net = torch.compile(model, dynamic=True)
        except Exception as error:  # e.g. a Python version this PyTorch's compiler does not support
            return compile_failed(error, args.batch_size[0])
    for batch_size in args.batch_size:
        torch.manual_seed(args.seed)  # the same shuffling for every batch size, and as in a process of its own
        model.load_state_dict(initial)
        optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
        result = dict(header, batch_size=batch_size, epochs=[])
        if args.compile:
            start = time.perf_counter()
            try:
                warm_up(net, loss_fn, xt, yt, xv, yv, batch_size)
                sync()
            except Exception as error:  # whatever stops Inductor (Triton, a C compiler, ...)
                return compile_failed(error, batch_size)
            result["compile_seconds"] = round(time.perf_counter() - start, 3)
        for epoch in range(args.epochs):
            net.train()
            start = time.perf_counter()
            order = torch.randperm(n, device=device)
            loss_sum, correct = 0.0, 0
            for b in range(0, n, batch_size):
                idx = order[b : b + batch_size]
                xb, yb = xt[idx], yt[idx]
                logits = net(xb)
                loss = loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # What a Keras-style log reads back every step.
                loss_sum += loss.item() * xb.shape[0]
                correct += int((logits.argmax(1) == yb).sum().item())
            sync()
            train_seconds = time.perf_counter() - start

            start = time.perf_counter()
            val_loss, val_correct = validate(net, loss_fn, xv, yv, batch_size)
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
        print(json.dumps(result), flush=True)  # line by line: a run stopped by a timeout keeps what it did
    return 0


if __name__ == "__main__":
    sys.exit(main())
