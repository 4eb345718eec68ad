#!/usr/bin/env bash
# Runs lamina's libFuzzer targets (tests/fuzz) from a LAMINA_FUZZ=ON build.
#
#   tools/fuzz.sh BUILD_DIR SECONDS [TARGET...]    e.g. tools/fuzz.sh build-asan 60
#
# Seed corpora come from real files: ../shared's Keras models and MNIST labels, the plugin
# manifests of the build, and small files written by lamina_fuzz_seeds. What the fuzzer adds is kept
# in BUILD_DIR/fuzz/corpus/TARGET between runs; crashes land in BUILD_DIR/fuzz/findings/TARGET
# (emptied at the start of each run) and make this script fail: each is a bug to fix, then a test.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: tools/fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: tools/fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
((${#targets[@]})) || targets=(fuzz_h5_model fuzz_model_json fuzz_idx fuzz_plugin_manifest)
shared=../shared
work=$build/fuzz
seeds=$work/seeds
mkdir -p "$seeds"/{h5,json,idx,manifest}

# Seeds, written afresh each run (cheap).
"$build/bin/lamina_fuzz_seeds" "$seeds" >/dev/null
if [[ -d $shared/interop/keras_models ]]; then
  cp "$shared"/interop/keras_models/*.h5 "$seeds/h5/" 2>/dev/null || true
fi
cp tests/data/keras_models_v2/*.h5 "$seeds/h5/"  # Keras 3 and tf_keras graphs
cp examples/*.json "$seeds/json/"
cp "$build"/lib/lamina/plugins/*.json "$seeds/manifest/"
find "$build/tests/fixtures/plugins" -name '*.json' -exec cp {} "$seeds/manifest/" \; 2>/dev/null || true
mnist=$shared/data/mnist
if [[ -f $mnist/t10k-labels-idx1-ubyte.gz ]]; then
  cp "$mnist/t10k-labels-idx1-ubyte.gz" "$seeds/idx/labels.gz"
  # Plain (uncompressed) IDX files too: the labels and the first 4 images, with headers to match.
  python3 - "$mnist" "$seeds/idx" <<'PY'
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
labels = gzip.open(src + "/t10k-labels-idx1-ubyte.gz").read()
open(out + "/labels_100.idx", "wb").write(struct.pack(">I I", 0x801, 100) + labels[8:108])
images = gzip.open(src + "/t10k-images-idx3-ubyte.gz").read(16 + 4 * 784)
open(out + "/images_4.idx", "wb").write(struct.pack(">I I I I", 0x803, 4, 28, 28) + images[16:])
open(out + "/floats.idx", "wb").write(struct.pack(">I I I", 0xD02, 2, 3) + struct.pack(">6f", *range(6)))
PY
fi

declare -A seed_dir=([fuzz_h5_model]=h5 [fuzz_model_json]=json [fuzz_idx]=idx [fuzz_plugin_manifest]=manifest)
declare -A max_len=([fuzz_h5_model]=65536 [fuzz_model_json]=65536 [fuzz_idx]=65536 [fuzz_plugin_manifest]=4096)
# libFuzzer's malloc limit also fires inside the probe child that reads an .h5 file before libhdf5
# may touch it in the process (h5::probe): libhdf5 asks for tens of GB on some damaged headers, which
# the child is there to absorb. For that target the limit is ASan's own (1 TB: beyond it malloc
# returns null), and what counts is the resident memory of the fuzzing process (-rss_limit_mb).
declare -A malloc_limit=([fuzz_h5_model]=1048576 [fuzz_model_json]=3072 [fuzz_idx]=3072 [fuzz_plugin_manifest]=3072)
failed=0
for t in "${targets[@]}"; do
  corpus=$work/corpus/$t findings=$work/findings/$t
  # Findings of an earlier run were reproduced and fixed (or kept as tests) by then; start afresh.
  rm -rf "$findings"
  mkdir -p "$corpus" "$findings"
  echo "== $t: ${seconds}s"
  # FUZZ_KEEP_GOING=1: fuzz on after a finding (-fork), to collect every finding of a long run.
  keep_going=()
  [[ ${FUZZ_KEEP_GOING:-0} == 1 ]] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  if ! ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/bin/$t" "$corpus" "$seeds/${seed_dir[$t]}" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
      -timeout=30 -rss_limit_mb=4096 -malloc_limit_mb="${malloc_limit[$t]}" -artifact_prefix="$findings/" -print_final_stats=1 "${keep_going[@]}" \
      >"$work/$t.log" 2>&1; then
    echo "$t: the fuzzer stopped with a finding (log: $work/$t.log)"
    failed=1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|cov: ' "$work/$t.log" | tail -n 3 || true
  # slow-unit-* files are information (an input that took over 10 s), not findings.
  if compgen -G "$findings/crash-*" >/dev/null || compgen -G "$findings/oom-*" >/dev/null ||
    compgen -G "$findings/timeout-*" >/dev/null || compgen -G "$findings/leak-*" >/dev/null; then
    echo "$t: findings in $findings:"
    ls "$findings"
    failed=1
  fi
done
exit $failed
