#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the dependencies, build lamina, and train the
# seed lecture's CNN on Fashion-MNIST with the default backend. Extra arguments go to `lamina train`
# (e.g. --epochs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build/bin/lamina plugins
build/bin/lamina train examples/mnist_cnn.json --output build/seed_cnn.h5 "$@"
