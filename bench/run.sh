#!/bin/bash
# One command for the benchmark: builds lamina (Release) and runs bench/run.py, which alternates lamina
# and PyTorch on the seed workloads and writes <build>/bench/results.{md,json,svg}.
#   bench/run.sh [run.py options, e.g. --rounds 5 --max-load 0.5]
# LAMINA_BUILD picks the build folder (default: build/ at the repository root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LAMINA_BUILD:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target lamina_bench lamina_backend_onednn lamina_backend_reference \
  lamina_layer_core lamina_layer_convolutional lamina_layer_pooling lamina_optimizer_builtin >/dev/null
exec /usr/bin/python3 "$root/bench/run.py" --build "$build" "$@"
