#!/usr/bin/env bash
# The sanitizer build: everything with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# (LAMINA_FUZZ=ON, which also builds the fuzz targets) in build-asan/, then the whole test suite
# under the sanitizers, then every fuzz target for FUZZ_SECONDS (default 60). OpenCL and CUDA are
# left out of this build: their drivers are not instrumented and their tests run in the main build.
# docs/reliability.md has its timings.
#
#   tools/sanitize.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
start=$(date +%s)
[[ -f build-asan/CMakeCache.txt ]] ||
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAMINA_FUZZ=ON \
    -DLAMINA_WITH_OPENCL=OFF -DLAMINA_WITH_CUDA=OFF
cmake --build build-asan -j"$(nproc)"
built=$(date +%s)
# Leaks are not failures here: plugins are never unloaded and caches live until exit by design.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The reference backend's naive loops run ~30x slower instrumented: its three long training cases
# (seed MLP, seed CNN, CNN predictions against onednn) stay in the main build's run only.
# sdk_out_of_tree builds third-party projects with the system compiler against an install of this
# tree, which an instrumented library cannot serve; it runs in the main build's suite.
slow='seed (MLP|CNN) .* on reference$|^reference and onednn give the same predictions|^sdk_out_of_tree$'
(cd build-asan && ctest --output-on-failure -j"$(nproc)" -E "$slow")
tested=$(date +%s)
tools/fuzz.sh build-asan "$seconds"
echo "sanitizer build: build $((built - start)) s, test suite $((tested - built)) s, fuzzing $(($(date +%s) - tested)) s"
