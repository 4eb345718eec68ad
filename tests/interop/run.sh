#!/usr/bin/env bash
# Model files between real Keras and lamina, both ways (tests/interop/keras_interop.py).
# Not part of ctest: it installs Keras 3 and Keras 2 (tf_keras) with TensorFlow from PyPI into a
# virtual environment, which needs network access and takes about three minutes the first time.
# usage: tests/interop/run.sh [BUILD_DIR]     (default: build; the lamina CLI must be built)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
venv=${LAMINA_KERAS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lamina/keras-venv}
if ! "$venv/bin/python" -c 'import keras, tf_keras, h5py' 2>/dev/null; then
  echo "Installing Keras into $venv ..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --progress-bar off tensorflow tf_keras h5py
fi
export TF_CPP_MIN_LOG_LEVEL=3
exec "$venv/bin/python" "$root/tests/interop/keras_interop.py" --lamina "$build/bin/lamina" --mnist "$root/tests/data/mnist"
