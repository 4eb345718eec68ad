#!/bin/bash
# One command for the benchmark: builds lamina (Release) and the C++ peers, and runs bench/run.py, which
# alternates lamina and its peers on the seed workloads and writes <build>/bench/results.{md,json,svg,png}.
#   bench/run.sh [--setup] [run.py options, e.g. --rounds 5 --max-load 0.5, --quick, --only onednn,libtorch]
# --setup first runs bench/setup_peers.sh (Debian packages as root, the peers' build, the PyPI venv).
# LAMINA_BUILD picks the build folder (default: build/ at the repository root); LAMINA_BENCH_VENV the
# venv (default ~/.cache/lamina/bench-venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LAMINA_BUILD:-$root/build}
venv=${LAMINA_BENCH_VENV:-$HOME/.cache/lamina/bench-venv}
if [ "${1:-}" = --setup ]; then
  shift
  LAMINA_BUILD=$build LAMINA_BENCH_VENV=$venv "$root/bench/setup_peers.sh"
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(lamina_bench lamina_backend_onednn lamina_backend_reference lamina_layer_core lamina_layer_convolutional
  lamina_layer_pooling lamina_optimizer_builtin)
# The opencl backend exists where CMake found OpenCL.
if cmake --build "$build" --target help | grep lamina_backend_opencl >/dev/null; then  # not -q: with pipefail, an early exit breaks the pipe
  targets+=(lamina_backend_opencl)
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null
# The peers, when bench/setup_peers.sh has configured them (an up-to-date build is a no-op).
if [ -f "$build/bench-peers/CMakeCache.txt" ]; then
  cmake --build "$build/bench-peers" -j"$(nproc)" >/dev/null
fi

# run.py under the venv's python when there is one: that python has matplotlib for the PNG chart. The
# Debian PyTorch peer always runs under /usr/bin/python3 whatever runs run.py.
python=/usr/bin/python3
[ -x "$venv/bin/python" ] && python=$venv/bin/python
exec "$python" "$root/bench/run.py" --build "$build" --venv "$venv" "$@"
