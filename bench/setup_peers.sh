#!/bin/bash
# Installs and builds the benchmark's peers (bench/run.py finds them; a missing one is skipped):
#   - Debian packages (apt-get, as root): PyTorch 1.13 for /usr/bin/python3, LibTorch, OpenBLAS,
#     tiny-dnn and the headers it needs;
#   - bench/peers (LibTorch and tiny-dnn programs, a standalone CMake project) into <build>/bench-peers;
#   - a Python venv with the newest PyTorch (CPU use) and Keras 3 with JAX from PyPI, and matplotlib
#     for the PNG chart.
#
#   bench/setup_peers.sh [--no-apt] [--no-venv]
# Environment: LAMINA_BUILD (default build/ at the repository root; the peers go into
# $LAMINA_BUILD/bench-peers), LAMINA_BENCH_VENV (default ~/.cache/lamina/bench-venv),
# KERAS_BACKEND_PACKAGE (default jax; set it to tensorflow to get Keras' TensorFlow backend instead).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LAMINA_BUILD:-$root/build}
venv=${LAMINA_BENCH_VENV:-$HOME/.cache/lamina/bench-venv}
keras_backend=${KERAS_BACKEND_PACKAGE:-jax}
apt=1 make_venv=1
for arg in "$@"; do
  case $arg in
    --no-apt) apt=0 ;;
    --no-venv) make_venv=0 ;;
    *) echo "usage: $0 [--no-apt] [--no-venv]" >&2; exit 2 ;;
  esac
done

# Debian 12 packages. tiny-dnn's headers include cereal, stb and gemmlowp although the package does
# not depend on them. libopenblas0-pthread makes OpenBLAS the system's libblas.so.3 (the alternative
# with the highest priority): Debian's torch and LibTorch link libblas.so.3, and with the default
# reference BLAS their dense layers run single-threaded and slowly; run.py reports which one they got.
packages=(python3-torch libtorch-dev libopenblas0-pthread tiny-dnn libcereal-dev libstb-dev libgemmlowp-dev
  zlib1g-dev cmake g++ python3-venv dataset-fashion-mnist)
if [ "$apt" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing Debian packages (run as root, or install them): ${missing[*]}" >&2
      exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# The C++ peers: about a minute on 2 cores (tiny-dnn's one translation unit takes ~30 s).
cmake -S "$root/bench/peers" -B "$build/bench-peers" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build/bench-peers" -j"$(nproc)"

# The venv: PyPI's torch wheel for Linux carries CUDA libraries (about 3 GB); only its CPU side is
# used. jax from PyPI is CPU-only unless its CUDA extras are asked for.
if [ "$make_venv" = 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --upgrade pip
  "$venv/bin/python" -m pip install --upgrade torch keras "$keras_backend" h5py matplotlib numpy
  # Keras imports its backend at import time (TensorFlow unless KERAS_BACKEND says otherwise).
  KERAS_BACKEND=$keras_backend "$venv/bin/python" -c \
    'import torch, keras; print("venv: torch", torch.__version__, "keras", keras.__version__, keras.backend.backend())'
fi
echo "peers ready: $build/bench-peers, venv $venv. Run: bench/run.sh"
