#!/usr/bin/env bash
# Builds lamina and runs the whole test suite through ctest. Skipped tests say why.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
