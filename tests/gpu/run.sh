#!/usr/bin/env bash
# The cudnn backend on a real GPU, in one go (tests/gpu/README.md says what must be present):
#   1. build lamina with the cudnn backend (or unpack the build `run.sh --prepare` packed elsewhere),
#   2. run every cudnn test case: the conformance table against the reference backend, the gradient
#      checks, the seed MLP and CNN, the predictions against the reference, the host-side tests,
#   3. run the cudnn test cases of lamina_tests once more under compute-sanitizer: memcheck with
#      leak checking over all of them (at most 90 s), racecheck over the conformance table (at most
#      60 s); the error counts are reported, they do not change the exit status,
#   4. train the seed CNN (examples/mnist_cnn.json) for one epoch on Fashion-MNIST with
#      `lamina train --backend cudnn` at batch sizes 32, 128, 256 and 1024, again at batch 32 with
#      timed algorithm choice (LAMINA_CUDNN_FIND=1), at batch 32 and 256 with replayed steps as CUDA
#      graphs (LAMINA_CUDNN_GRAPHS=1, whose test case also runs once more with it set in step 2),
#      then a short run at batch 256 under LAMINA_PROFILE with every kernel waited for, for the
#      time per op on the GPU,
#   5. train the same model the same way with PyTorch on the same GPU: float32 at every batch size,
#      PyTorch's default TF32 convolutions at batch 32, and the torch.compile'd model at every batch
#      size (its compiling is not timed),
#   6. print a summary table. summary.md, tests.tsv, tests.log, sanitizer_memcheck.log,
#      sanitizer_racecheck.log, lamina.log and torch.log go to $OUT (where the GPU machines return
#      files from) or build-gpu/results.
# Without a usable GPU it stops after the build and says why.
#
#   tests/gpu/run.sh             on the GPU machine (meant to take under 4 minutes with the packed
#                                build)
#   tests/gpu/run.sh --no-sanitizer --no-compile
#                                the same without step 3, or without torch.compile (each saves 1 to 2
#                                minutes)
#   tests/gpu/run.sh --prepare   on a machine with lamina's build dependencies: builds for sm_80 and
#                                sm_90 and packs tests/gpu/prebuilt.tar.gz for GPU machines that lack
#                                them (Boost.JSON, HDF5, CLI11, doctest)
#
# Environment: LAMINA_GPU_BUILD (build folder, default build-gpu), LAMINA_GPU_MODE (source or
# prebuilt; default: prebuilt when tests/gpu/prebuilt.tar.gz is there), FASHION_MNIST_DIR, JOBS,
# PYTHON, CUDA_ARCHITECTURES, BATCH_SIZES (timed besides 32; default "128 256 1024"),
# MEMCHECK_TIMEOUT (90), RACECHECK_TIMEOUT (60), COMPILE_TIMEOUT (120; cut to what is left of
# LAMINA_GPU_BUDGET, 225 seconds for everything after the build).
# Exit status: 0 everything ran and passed; 1 something failed; 2 no usable GPU.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${LAMINA_GPU_BUILD:-$ROOT/build-gpu}
RESULTS=${OUT:-$BUILD/results}
JOBS=${JOBS:-$(nproc)}
PACKED=$HERE/prebuilt.tar.gz
START=$SECONDS
BATCH_SIZES=${BATCH_SIZES-128 256 1024}
MEMCHECK_TIMEOUT=${MEMCHECK_TIMEOUT:-90}
RACECHECK_TIMEOUT=${RACECHECK_TIMEOUT:-60}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-120}
BUDGET=${LAMINA_GPU_BUDGET:-225}
BUDGET_START=$SECONDS  # reset once the build is ready
SANITIZER=1  # --no-sanitizer: 0
COMPILE=1    # --no-compile: 0
CONFORMANCE_CASE="conformance: every op on cudnn matches the reference"

say() { printf '[gpu %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
  say "FAILED: $*"
  exit 1
}

# ------------------------------------------------------------------------------------------------
# Building

# Configure and build the targets the run needs into $1 for CUDA architectures $2. Extra CMake
# arguments follow. oneDNN and OpenCL are left out: GPU images rarely have them, and the cudnn
# tests compare against the reference backend only.
build_lamina() {
  local dir=$1 archs=$2
  shift 2
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  [[ -f $dir/CMakeCache.txt ]] && generator=()  # keep an existing build folder's generator
  mkdir -p "$dir"
  say "configuring into $dir (CUDA architectures $archs)"
  if ! cmake -S "$ROOT" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES="$archs" -DLAMINA_WITH_ONEDNN=OFF -DLAMINA_WITH_OPENCL=OFF "$@" \
      >"$dir/configure.log" 2>&1; then
    tail -n 25 "$dir/configure.log"
    return 1
  fi
  if ! grep -q "cudnn backend: cuDNN" "$dir/configure.log"; then
    grep "cudnn backend" "$dir/configure.log"
    say "CMake did not set up the cudnn backend (no nvcc, or no cuDNN: see $dir/configure.log)"
    return 1
  fi
  say "building with $JOBS jobs"
  if ! cmake --build "$dir" -j"$JOBS" --target lamina_cli lamina_tests lamina_cudnn_host_tests \
      >"$dir/build.log" 2>&1; then
    grep -E "error|Error" "$dir/build.log" | head -n 20
    tail -n 5 "$dir/build.log"
    return 1
  fi
}

# The folder PyTorch's nvidia-* wheels install into (cudnn/, cublas/ or cu13/ below it), if any.
nvidia_root() {
  "$PYTHON" -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null
}

# The folder holding file $1 under the nvidia wheels' root, if any.
wheel_file_dir() {
  local root
  root=$(nvidia_root) || return 1
  [[ -n $root ]] || return 1
  find "$root" -maxdepth 4 -name "$1" -printf '%h\n' 2>/dev/null | head -n 1 | grep .
}

# cuDNN's header and library, from the CUDA toolkit or PyTorch's nvidia-cudnn wheel: prints CMake
# arguments when they are not where CMake looks by itself.
cudnn_cmake_args() {
  local cuda=${CUDA_HOME:-/usr/local/cuda} include lib
  [[ -f $cuda/include/cudnn.h || -f /usr/include/cudnn.h || -f /usr/include/x86_64-linux-gnu/cudnn.h ]] && return
  include=$(wheel_file_dir cudnn.h) || return
  lib=$(wheel_file_dir 'libcudnn.so*') || return
  echo "-DCUDNN_INCLUDE_DIR=$include -DCUDNN_LIBRARY=$(ls "$lib"/libcudnn.so* | head -n 1)"
}

# Makes cuDNN and cuBLAS loadable when the system's loader does not know them: from the CUDA
# toolkit's lib64, or from PyTorch's wheels.
find_cuda_libraries() {
  local lib dir cuda=${CUDA_HOME:-/usr/local/cuda}
  for lib in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13; do
    ldconfig -p 2>/dev/null | grep -q "$lib" && continue
    if [[ -f $cuda/lib64/$lib ]]; then
      dir=$cuda/lib64
    else
      dir=$(wheel_file_dir "$lib") || { say "warning: $lib not found (cudnn backend will not load)"; continue; }
    fi
    [[ :${LD_LIBRARY_PATH:-}: == *:$dir:* ]] || export LD_LIBRARY_PATH=$dir:${LD_LIBRARY_PATH:-}
  done
}

pick_python() {
  PYTHON=${PYTHON:-}
  if [[ -z $PYTHON ]]; then
    for p in python3 /usr/bin/python3; do
      if "$p" -c 'import torch' 2>/dev/null; then
        PYTHON=$p
        break
      fi
    done
    PYTHON=${PYTHON:-python3}
  fi
}

# --prepare: a relocatable build for GPU machines without lamina's build dependencies: the
# programs, liblamina and the plugins, and every shared library they load except the C and C++
# runtimes and CUDA's own (libcudnn, libcublas), which must come from the GPU machine.
prepare() {
  local dir=${LAMINA_GPU_BUILD:-$ROOT/build-gpu-prepare}
  build_lamina "$dir" "${CUDA_ARCHITECTURES:-80;90}" || die "build"
  local stage
  stage=$(mktemp -d)/lamina-prebuilt
  mkdir -p "$stage/bin" "$stage/lib/lamina/plugins" "$stage/deps"
  cp "$dir/bin/lamina" "$dir/bin/lamina_tests" "$dir/bin/lamina_cudnn_host_tests" "$stage/bin/"
  cp -P "$dir"/lib/liblamina.so* "$stage/lib/"
  # not the communicator plugins: the GPU run is one process, and NCCL's library alone is 218 MB
  local f
  for f in "$dir"/lib/lamina/plugins/*.so "$dir"/lib/lamina/plugins/*.json; do
    [[ $(basename "$f") == lamina_communicator_* ]] || cp "$f" "$stage/lib/lamina/plugins/"
  done
  local skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libresolv\.|libgcc_s\.|libstdc\+\+\.|libcud|libcublas|libnccl|liblamina)'
  find "$stage/bin" "$stage/lib" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
    xargs -0 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
      [[ $name =~ $skip ]] || cp -L "$path" "$stage/deps/$name"
    done
  local changed
  changed=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -c .)
  echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) with $changed uncommitted change(s)," \
    "CUDA architectures ${CUDA_ARCHITECTURES:-80;90}, built $(date -u +%FT%TZ)" >"$stage/REVISION"
  tar -C "$(dirname "$stage")" -czf "$PACKED" lamina-prebuilt || die "packing"
  rm -rf "$(dirname "$stage")"
  say "packed $PACKED ($(du -h "$PACKED" | cut -f1)); carry it with tests/gpu/data (see tests/gpu/README.md)"
}

# ------------------------------------------------------------------------------------------------
# The run

# The folder holding the four Fashion-MNIST .gz files.
find_data() {
  local d
  for d in "${FASHION_MNIST_DIR:-}" /usr/share/datasets/fashion-mnist "$HERE/data"; do
    [[ -n $d && -f $d/train-images-idx3-ubyte.gz && -f $d/train-labels-idx1-ubyte.gz &&
       -f $d/t10k-images-idx3-ubyte.gz && -f $d/t10k-labels-idx1-ubyte.gz ]] && { echo "$d"; return; }
  done
  return 1
}

# Runs every test case of `binary` whose name contains "cudnn", one process each (a skipped case
# ends its process with status 77), and appends "name<TAB>passed|failed|skipped" to tests.tsv.
run_cases() {
  local binary=$1 name filter status
  "$binary" --list-test-cases --no-colors 2>/dev/null | grep cudnn | sed 's/^[[:space:]]*//' |
    while IFS= read -r name; do
      filter=${name//,/?}  # doctest splits filters at commas; ? matches any one character
      "$binary" --no-colors -tc="$filter" >>"$RESULTS/tests.log" 2>&1
      status=$?
      case $status in
        0) printf '%s\tpassed\n' "$name" ;;
        77) printf '%s\tskipped\n' "$name" ;;
        *) printf '%s\tfailed\n' "$name" ;;
      esac
    done >>"$RESULTS/tests.tsv"
}

# Epoch figures from a `lamina train --verbose 2` log: seconds samples/s loss accuracy val_loss val_accuracy
lamina_epoch() {
  grep -E '^[0-9]+/[0-9]+ - ' "$1" | tail -n 1 |
    sed -E 's/^[0-9]+\/[0-9]+ - ([0-9.]+)s - ([0-9.]+) samples\/s - loss: ([0-9.e+-]+) - accuracy: ([0-9.e+-]+) - val_loss: ([0-9.e+-]+) - val_accuracy: ([0-9.e+-]+).*/\1 \2 \3 \4 \5 \6/'
}

# Field $3 of the first epoch at batch size $2 in torch_seed_cnn.py's output $1 (one JSON line per
# batch size), or of the line itself (compile_seconds); "-" where there is none.
torch_field() {
  "$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("batch_size") == int(sys.argv[2]) and d.get("epochs"):
        print(d["epochs"][0].get(sys.argv[3], d.get(sys.argv[3], "-")))
        break
else:
    print("-")
' "$1" "$2" "$3" 2>/dev/null || echo "-"
}

# The "error" of torch_seed_cnn.py's output $1, if any (e.g. why torch.compile cannot be used).
torch_error() {
  "$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if "error" in d:
        print(d["error"])
        break
' "$1" 2>/dev/null
}

# $1 / $2 to two decimals, or "-" when either is missing.
quotient() {
  awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b}'
}

# The figures of PyTorch's epoch at batch size $2 in torch_seed_cnn.py's output $1, for the
# summary; nothing when there are none.
torch_figures() {
  local s
  s=$(torch_field "$1" "$2" train_seconds)
  [[ $s == - ]] && return
  echo "${s}s train ($(awk -v a="$s" -v b="$(torch_field "$1" "$2" val_seconds)" 'BEGIN {printf "%.2f", a + b}')s" \
    "with validation), $(torch_field "$1" "$2" samples_per_second) samples/s," \
    "val_accuracy $(torch_field "$1" "$2" val_accuracy)"
}

# lamina's training seconds for an epoch of 60,000 images at $1 samples/s, or "-".
lamina_seconds() {
  [[ $1 == - || -z $1 ]] && { echo "-"; return; }
  awk -v s="$1" 'BEGIN {printf "%.2f", 60000 / s}'
}

# The seconds a time-boxed step may take: its own limit $1, cut to what is left of the budget for
# everything after the build.
within_budget() {
  local left=$((BUDGET - (SECONDS - BUDGET_START)))
  ((left < $1)) && echo "$left" || echo "$1"
}

# ------------------------------------------------------------------------------------------------
# compute-sanitizer

# NVIDIA's compute-sanitizer: on PATH, else in the CUDA toolkit ($CUDA_HOME, /usr/local/cuda, then
# /usr/local/cuda-* from the newest version down).
find_sanitizer() {
  local c d dirs
  c=$(command -v compute-sanitizer 2>/dev/null) && { echo "$c"; return; }
  mapfile -t dirs < <(printf '%s\n' /usr/local/cuda-* | sort -rV)
  for d in "${CUDA_HOME:-/usr/local/cuda}" /usr/local/cuda "${dirs[@]}"; do
    for c in "$d/bin/compute-sanitizer" "$d/compute-sanitizer/compute-sanitizer"; do
      [[ -x $c ]] && { echo "$c"; return; }
    done
  done
  return 1
}

# The verdict, in a few words, on the log $2 of compute-sanitizer's tool $1 in a run that ended
# with status $3 under a limit of $4 seconds: the errors of its "ERROR SUMMARY: N errors" line (the
# first one: past the print limit a second one counts the errors not printed), memcheck's "Leaked
# ..." lines, racecheck's hazard summary, the test cases' exit status when they failed, or that it
# timed out.
sanitizer_verdict() {
  local tool=$1 log=$2 status=$3 limit=$4 errors leaks hazards reports
  errors=$(grep -oE 'ERROR SUMMARY: [0-9,]+ error' "$log" | head -n 1 | grep -oE '[0-9,]+' | tr -d ,)
  leaks=$(grep -cE 'Leaked [0-9,]+ bytes' "$log")
  hazards=$(grep -oE 'RACECHECK SUMMARY: .*' "$log" | head -n 1 | sed 's/^RACECHECK SUMMARY: //')
  if [[ $status == 124 || $status == 137 ]]; then
    # No summary yet: count the reports so far, the unindented "=========" lines that are not the
    # banner, a summary or the tool's own note on the end of the process.
    reports=$(grep -E '^========= [^ ]' "$log" |
      grep -cvE 'COMPUTE-SANITIZER|SUMMARY|Target application|terminate successfully|^========= Note')
    local verdict="timed out after ${limit}s, ${errors:-$reports} error report(s)"
    [[ $tool == memcheck ]] && verdict+=" and $leaks leak(s)"
    echo "$verdict before that"
  elif [[ -n $errors ]]; then
    local verdict="$errors error(s)"
    [[ $tool == memcheck || $leaks != 0 ]] && verdict+=", $leaks leak(s)"
    [[ -n $hazards ]] && verdict+=" (racecheck: $hazards)"
    [[ $status != 0 ]] && verdict+="; the test cases exited with status $status"
    echo "$verdict"
  else
    echo "did not run (status $status): $(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | cut -c1-200)"
  fi
}

# Runs the command after $1 $2 (compute-sanitizer with its arguments, the test program with its
# own) for at most $2 seconds, writing its output to $RESULTS/sanitizer_$1.log, and prints the
# verdict. `timeout` signals its whole process group, so the test program the sanitizer started
# ends with it.
sanitize() {
  local tool=$1 limit=$2 status log=$RESULTS/sanitizer_$1.log
  shift 2
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  status=$?
  sanitizer_verdict "$tool" "$log" "$status" "$limit"
}

main() {
  pick_python
  # The batch sizes timed besides the seed CNN's 32 (its config's), as a list.
  local batches=() b
  for b in $BATCH_SIZES; do
    [[ $b =~ ^[1-9][0-9]*$ ]] || die "BATCH_SIZES: '$b' is not a batch size"
    [[ $b == 32 ]] || batches+=("$b")
  done
  WORK=$(mktemp -d)  # intermediate files; the results folder gets a few consolidated ones
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$RESULTS"
  : >"$RESULTS/tests.log"
  : >"$RESULTS/tests.tsv"
  say "lamina $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') on $(hostname), results in $RESULTS"

  local gpu="none found" arch=${CUDA_ARCHITECTURES:-}
  if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
    gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader | head -n 1)
    [[ -z $arch ]] && arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '. ')
  fi
  arch=${arch:-80;90}
  say "GPU: $gpu"

  local data
  data=$(find_data) || data=""
  [[ -n $data ]] && say "Fashion-MNIST: $data" ||
    say "Fashion-MNIST not found (looked in \$FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist, $HERE/data)"

  # 1. the build
  local mode=${LAMINA_GPU_MODE:-}
  [[ -z $mode ]] && { [[ -f $PACKED ]] && mode=prebuilt || mode=source; }
  local bin build_seconds=$SECONDS
  if [[ $mode == prebuilt ]]; then
    [[ -f $PACKED ]] || die "LAMINA_GPU_MODE=prebuilt but $PACKED is missing (make it with run.sh --prepare)"
    local prefix=/tmp/lamina-gpu
    rm -rf "$prefix/lamina-prebuilt" && mkdir -p "$prefix" && tar -C "$prefix" -xzf "$PACKED" || die "unpacking"
    prefix=$prefix/lamina-prebuilt
    export LD_LIBRARY_PATH=$prefix/lib:$prefix/deps:${LD_LIBRARY_PATH:-}
    export LAMINA_CUDNN_PLUGIN=$prefix/lib/lamina/plugins/lamina_backend_cudnn.so
    bin=$prefix/bin
    say "using the packed build ($(cat "$prefix/REVISION"))"
    local newer
    newer=$(find "$ROOT"/core "$ROOT"/sdk "$ROOT"/backends "$ROOT"/layers "$ROOT"/plugins "$ROOT"/apps "$ROOT"/tests \
      -newer "$PACKED" \( -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name '*.h' \) 2>/dev/null | head -n 3)
    [[ -z $newer ]] || say "warning: sources changed after the packed build was made (e.g. ${newer//$'\n'/, }); rerun run.sh --prepare"
  else
    # shellcheck disable=SC2046
    build_lamina "$BUILD" "$arch" $(cudnn_cmake_args) ||
      die "the build (logs in $BUILD; a machine without lamina's build dependencies can use run.sh --prepare, see tests/gpu/README.md)"
    bin=$BUILD/bin
  fi
  build_seconds=$((SECONDS - build_seconds))
  find_cuda_libraries
  say "build ready in ${build_seconds}s"
  BUDGET_START=$SECONDS

  # 2. is there a GPU?
  local line
  line=$("$bin/lamina" plugins 2>&1 | grep -E '^cudnn ' | head -n 1)
  if [[ -z $line ]]; then
    "$bin/lamina" plugins 2>&1 | tail -n 20
    die "lamina plugins does not list the cudnn backend"
  fi
  if ! echo "$line" | grep -qE '^cudnn +backend +[^ ]+ +[^ ]+ +yes'; then
    say "no usable GPU: ${line#*why: }"
    {
      echo "| | |"
      echo "|---|---|"
      echo "| GPU | $gpu |"
      echo "| build | $mode, ${build_seconds}s |"
      echo "| cudnn backend | not usable: ${line#*why: } |"
    } >"$RESULTS/summary.md"
    say "stopping here: everything after the build needs a GPU"
    exit 2
  fi
  say "cudnn backend: ${line#*yes }"

  # Gives the C++ seed-CNN test its data set where it looks for it (a throwaway GPU machine, as root).
  if [[ -n $data && ! -e /usr/share/datasets/fashion-mnist && $(id -u) == 0 ]]; then
    mkdir -p /usr/share/datasets && ln -s "$data" /usr/share/datasets/fashion-mnist
  fi

  # 3. the cudnn test cases
  say "running the cudnn test cases"
  run_cases "$bin/lamina_cudnn_host_tests"
  run_cases "$bin/lamina_tests"
  # Replayed steps as CUDA graphs (off by default): the same results bit for bit, every replayed
  # step one graph launch.
  local graphs_case="replayed steps train an MLP and a small CNN on cudnn exactly as normal steps (CUDA graphs when enabled)"
  LAMINA_CUDNN_GRAPHS=1 "$bin/lamina_tests" --no-colors -tc="${graphs_case//,/?}" >>"$RESULTS/tests.log" 2>&1
  case $? in
    0) printf '%s [LAMINA_CUDNN_GRAPHS=1]\tpassed\n' "$graphs_case" ;;
    77) printf '%s [LAMINA_CUDNN_GRAPHS=1]\tskipped\n' "$graphs_case" ;;
    *) printf '%s [LAMINA_CUDNN_GRAPHS=1]\tfailed\n' "$graphs_case" ;;
  esac >>"$RESULTS/tests.tsv"
  local passed failed skipped
  passed=$(grep -c $'\tpassed$' "$RESULTS/tests.tsv")
  failed=$(grep -c $'\tfailed$' "$RESULTS/tests.tsv")
  skipped=$(grep -c $'\tskipped$' "$RESULTS/tests.tsv")
  say "tests: $passed passed, $failed failed, $skipped skipped"
  grep -vE $'\tpassed$' "$RESULTS/tests.tsv" | sed 's/^/    /'

  # 4. the same test cases once more under compute-sanitizer. memcheck runs every cudnn case of
  # lamina_tests in one process; doctest runs them file by file, so the conformance table comes
  # first and is the part checked when the time runs out. Cases that skipped above are left out (a
  # skip ends the process), and so are the host-side tests, which launch no kernels of lamina's.
  # racecheck, much slower, looks at the conformance table only.
  local memcheck="skipped (--no-sanitizer)" racecheck="" sanitizer
  if [[ $SANITIZER == 1 ]]; then
    if sanitizer=$(find_sanitizer); then
      local skipped_cases cases=(--no-colors "-tc=*cudnn*")
      skipped_cases=$(grep -E $'\tskipped$' "$RESULTS/tests.tsv" | cut -f1 | sed 's/,/?/g' | paste -sd, -)
      [[ -n $skipped_cases ]] && cases+=("-tce=$skipped_cases")
      say "compute-sanitizer memcheck --leak-check full over the cudnn test cases (at most ${MEMCHECK_TIMEOUT}s; $sanitizer)"
      memcheck=$(sanitize memcheck "$MEMCHECK_TIMEOUT" "$sanitizer" --tool memcheck --leak-check full \
        "$bin/lamina_tests" "${cases[@]}")
      say "memcheck: $memcheck"
      say "compute-sanitizer racecheck over '$CONFORMANCE_CASE' (at most ${RACECHECK_TIMEOUT}s)"
      racecheck=$(sanitize racecheck "$RACECHECK_TIMEOUT" "$sanitizer" --tool racecheck \
        "$bin/lamina_tests" --no-colors "-tc=$CONFORMANCE_CASE")
      say "racecheck: $racecheck"
    else
      memcheck="not found (looked on PATH, in \$CUDA_HOME and /usr/local/cuda*)"
      say "compute-sanitizer $memcheck: going on without it"
    fi
  fi

  # 5. lamina, one epoch
  local lamina_figures="- - - - - -" find_figures="- - - - - -" config=$WORK/mnist_cnn.json
  if [[ -n $data ]]; then
    "$PYTHON" - "$ROOT/examples/mnist_cnn.json" "$config" "$data" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"]["path"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
    say "lamina train --backend cudnn --epochs 1 (60,000 images, batch 32)"
    "$bin/lamina" train "$config" --backend cudnn --epochs 1 --verbose 2 >"$WORK/lamina_train.log" 2>&1 ||
      { tail -n 20 "$WORK/lamina_train.log"; say "lamina train failed"; }
    lamina_figures=$(lamina_epoch "$WORK/lamina_train.log")
    [[ -n $lamina_figures ]] || lamina_figures="- - - - - -"
    tail -n 1 "$WORK/lamina_train.log" | sed 's/^/    /'
    say "again with LAMINA_CUDNN_FIND=1 (convolution algorithms timed rather than chosen by heuristics)"
    LAMINA_CUDNN_FIND=1 "$bin/lamina" train "$config" --backend cudnn --epochs 1 --verbose 2 \
      >"$WORK/lamina_train_find.log" 2>&1 || tail -n 20 "$WORK/lamina_train_find.log"
    find_figures=$(lamina_epoch "$WORK/lamina_train_find.log")
    [[ -n $find_figures ]] || find_figures="- - - - - -"
    tail -n 1 "$WORK/lamina_train_find.log" | sed 's/^/    /'
    for b in "${batches[@]}"; do
      say "lamina train --backend cudnn --epochs 1 --batch-size $b"
      "$bin/lamina" train "$config" --backend cudnn --epochs 1 --batch-size "$b" --verbose 2 \
        >"$WORK/lamina_train_b$b.log" 2>&1 ||
        { tail -n 20 "$WORK/lamina_train_b$b.log"; say "lamina train failed (batch $b)"; }
      tail -n 1 "$WORK/lamina_train_b$b.log" | sed 's/^/    /'
    done
    say "replayed steps as CUDA graphs (LAMINA_CUDNN_GRAPHS=1) at batch 32 and 256"
    for b in 32 256; do
      LAMINA_CUDNN_GRAPHS=1 "$bin/lamina" train "$config" --backend cudnn --epochs 1 --batch-size "$b" --verbose 2 \
        >"$WORK/lamina_graphs_b$b.log" 2>&1 || tail -n 20 "$WORK/lamina_graphs_b$b.log"
      tail -n 1 "$WORK/lamina_graphs_b$b.log" | sed "s/^/    batch $b: /"
    done
    say "the input pipeline at batch 256: the next batch read during the step (LAMINA_PREFETCH=on) or after it (off)"
    local mode
    for mode in on off; do
      LAMINA_PREFETCH=$mode "$bin/lamina" train "$config" --backend cudnn --epochs 1 --batch-size 256 --verbose 2 \
        >"$WORK/lamina_prefetch_$mode.log" 2>&1 || tail -n 20 "$WORK/lamina_prefetch_$mode.log"
      tail -n 1 "$WORK/lamina_prefetch_$mode.log" | sed "s/^/    $mode: /"
    done
    # Where the time goes at batch 256: each kernel waits for the device (LAMINA_CUDNN_SYNC=1), so
    # the time per op is its launch plus its run on the GPU, not the launch alone.
    say "the op profile of 10,000 images at batch 256, each kernel waited for (LAMINA_PROFILE=1 LAMINA_CUDNN_SYNC=1)"
    LAMINA_PROFILE=1 LAMINA_CUDNN_SYNC=1 "$bin/lamina" train "$config" --backend cudnn --epochs 1 --limit 10000 \
      --batch-size 256 --verbose 2 >"$WORK/lamina_profile.log" 2>&1
    grep -A 14 'lamina op profile' "$WORK/lamina_profile.log" | sed 's/^/    /'
  fi

  # 6. PyTorch, the same epochs: float32 at every batch size (in one process, see
  # torch_seed_cnn.py), TF32 convolutions at batch 32, then the torch.compile'd model at every batch
  # size, for at most COMPILE_TIMEOUT seconds and what is left of the run's budget (its results come
  # line by line, so a timeout keeps the batch sizes done before).
  local sizes compile_note="" limit status error
  sizes=$(IFS=,; echo "32${batches[*]:+,${batches[*]}}")
  if [[ -n $data ]]; then
    say "PyTorch, float32, batch sizes $sizes"
    "$PYTHON" "$HERE/torch_seed_cnn.py" --data "$data" --tf32 0 --batch-size "$sizes" >"$WORK/torch_tf32_0.json" \
      2>"$WORK/torch_tf32_0.log" || tail -n 5 "$WORK/torch_tf32_0.log"
    sed 's/^/    /' "$WORK/torch_tf32_0.json"
    say "PyTorch, tf32=1, batch 32"
    "$PYTHON" "$HERE/torch_seed_cnn.py" --data "$data" --tf32 1 --batch-size 32 >"$WORK/torch_tf32_1.json" \
      2>"$WORK/torch_tf32_1.log" || tail -n 5 "$WORK/torch_tf32_1.log"
    sed 's/^/    /' "$WORK/torch_tf32_1.json"
    limit=$(within_budget "$COMPILE_TIMEOUT")
    if [[ $COMPILE == 0 ]]; then
      compile_note="skipped (--no-compile)"
    elif ((limit < 30)); then
      compile_note="skipped: ${limit}s left of the ${BUDGET}s after the build (LAMINA_GPU_BUDGET)"
      say "PyTorch torch.compile $compile_note"
    else
      say "PyTorch torch.compile, float32, batch sizes $sizes (at most ${limit}s; compiling is not timed)"
      timeout -k 10 "$limit" "$PYTHON" "$HERE/torch_seed_cnn.py" --data "$data" --tf32 0 --compile \
        --batch-size "$sizes" >"$WORK/torch_compile.json" 2>"$WORK/torch_compile.log"
      status=$?
      error=$(torch_error "$WORK/torch_compile.json")
      if [[ -n $error ]]; then
        compile_note="not usable: ${error#torch.compile failed: }"
        say "PyTorch torch.compile $compile_note; going on with PyTorch eager only"
      else
        if [[ $status == 124 || $status == 137 ]]; then
          compile_note="timed out after ${limit}s"
          say "PyTorch torch.compile $compile_note"
        elif [[ $status != 0 ]]; then
          compile_note="failed with status $status (see torch.log)"
          tail -n 5 "$WORK/torch_compile.log"
        fi
        sed 's/^/    /' "$WORK/torch_compile.json"
      fi
    fi
  fi

  {
    for f in lamina_train lamina_train_find "${batches[@]/#/lamina_train_b}" lamina_graphs_b32 lamina_graphs_b256 \
      lamina_profile; do
      [[ -f $WORK/$f.log ]] && printf '==> %s\n' "$f" && cat "$WORK/$f.log"
    done
  } >"$RESULTS/lamina.log"
  {
    for f in torch_tf32_0 torch_tf32_1 torch_compile; do
      [[ -f $WORK/$f.json ]] && printf '==> %s\n' "$f" && cat "$WORK/$f.json" "$WORK/$f.log"
    done
  } >"$RESULTS/torch.log"

  # 7. the summary. lamina's epoch line gives the whole epoch's seconds (validation included, as
  # Keras prints it) and the training samples/s, from which the training seconds follow.
  local l_epoch l_sps l_loss l_acc l_vloss l_vacc l_train
  read -r l_epoch l_sps l_loss l_acc l_vloss l_vacc <<<"$lamina_figures"
  l_train=$(lamina_seconds "$l_sps")
  local f_epoch f_sps f_rest f_train
  read -r f_epoch f_sps f_rest <<<"$find_figures"
  f_train=$(lamina_seconds "$f_sps")
  local t_s t_vacc t_sps t_epoch tt_s tt_vacc tt_sps ratio c_figures
  t_s=$(torch_field "$WORK/torch_tf32_0.json" 32 train_seconds)
  t_sps=$(torch_field "$WORK/torch_tf32_0.json" 32 samples_per_second)
  t_vacc=$(torch_field "$WORK/torch_tf32_0.json" 32 val_accuracy)
  t_epoch=$(awk -v a="$t_s" -v b="$(torch_field "$WORK/torch_tf32_0.json" 32 val_seconds)" \
    'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.2f", a + b}')
  tt_s=$(torch_field "$WORK/torch_tf32_1.json" 32 train_seconds)
  tt_sps=$(torch_field "$WORK/torch_tf32_1.json" 32 samples_per_second)
  tt_vacc=$(torch_field "$WORK/torch_tf32_1.json" 32 val_accuracy)
  ratio=$(quotient "$l_train" "$t_s")
  c_figures=$(torch_figures "$WORK/torch_compile.json" 32)
  [[ -n $c_figures ]] &&
    c_figures+="; compiling took $(torch_field "$WORK/torch_compile.json" 32 compile_seconds)s before, not timed"
  {
    echo "| | |"
    echo "|---|---|"
    echo "| GPU | $gpu |"
    echo "| lamina | $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $mode build, ${build_seconds}s |"
    echo "| cudnn backend | ${line#*yes } |"
    echo "| cudnn test cases | $passed passed, $failed failed, $skipped skipped |"
    echo "| compute-sanitizer memcheck --leak-check full, cudnn test cases | $memcheck |"
    [[ -n $racecheck ]] && echo "| compute-sanitizer racecheck, the conformance table | $racecheck |"
    echo "| lamina seed CNN, 1 epoch, cudnn | ${l_train}s train (${l_epoch}s with validation), ${l_sps} samples/s, loss $l_loss, accuracy $l_acc, val_accuracy $l_vacc |"
    echo "| the same with LAMINA_CUDNN_FIND=1 | ${f_train}s train (${f_epoch}s with validation), ${f_sps} samples/s |"
    local g_figures g_sps
    for b in 32 256; do
      g_figures=$(lamina_epoch "$WORK/lamina_graphs_b$b.log" 2>/dev/null)
      read -r _ g_sps _ _ _ _ <<<"${g_figures:-- - - - - -}"
      echo "| batch $b with CUDA graphs (LAMINA_CUDNN_GRAPHS=1) | $(lamina_seconds "$g_sps")s train, ${g_sps} samples/s |"
    done
    echo "| PyTorch $(torch_field "$WORK/torch_tf32_0.json" 32 torch), float32 | ${t_s}s train (${t_epoch}s with validation), ${t_sps} samples/s, val_accuracy $t_vacc |"
    echo "| PyTorch, TF32 convolutions (its default) | ${tt_s}s train, ${tt_sps} samples/s, val_accuracy $tt_vacc |"
    [[ $COMPILE == 1 ]] && echo "| PyTorch torch.compile, float32 | ${c_figures:-${compile_note:--}} |"
    echo "| lamina / PyTorch float32, training time | $ratio (target: at most 1) |"
    [[ $COMPILE == 1 ]] && echo "| lamina / PyTorch torch.compile, training time |" \
      "$(quotient "$l_train" "$(torch_field "$WORK/torch_compile.json" 32 train_seconds)") |"
    # The other batch sizes, four rows each: lamina, PyTorch float32, torch.compile, the ratios.
    local figures b_epoch b_sps b_vacc b_train b_figures
    for b in "${batches[@]}"; do
      figures=$(lamina_epoch "$WORK/lamina_train_b$b.log" 2>/dev/null)
      read -r b_epoch b_sps _ _ _ b_vacc <<<"${figures:-- - - - - -}"
      b_train=$(lamina_seconds "$b_sps")
      echo "| batch $b: lamina, cudnn | ${b_train}s train (${b_epoch}s with validation), ${b_sps} samples/s," \
        "val_accuracy $b_vacc |"
      b_figures=$(torch_figures "$WORK/torch_tf32_0.json" "$b")
      echo "| batch $b: PyTorch float32 | ${b_figures:--} |"
      b_figures=$(torch_figures "$WORK/torch_compile.json" "$b")
      [[ $COMPILE == 1 ]] && echo "| batch $b: PyTorch torch.compile, float32 | ${b_figures:-${compile_note:--}} |"
      b_figures="$(quotient "$b_train" "$(torch_field "$WORK/torch_tf32_0.json" "$b" train_seconds)") float32"
      [[ $COMPILE == 1 ]] &&
        b_figures+=", $(quotient "$b_train" "$(torch_field "$WORK/torch_compile.json" "$b" train_seconds)") torch.compile"
      echo "| batch $b: lamina / PyTorch, training time | $b_figures |"
    done
    echo "| whole run | $((SECONDS - START))s |"
  } >"$RESULTS/summary.md"
  echo
  cat "$RESULTS/summary.md"
  echo
  [[ $failed == 0 && $l_train != - ]] && exit 0
  exit 1
}

PREPARE=0
for arg in "$@"; do
  case $arg in
    --prepare) PREPARE=1 ;;
    --no-sanitizer) SANITIZER=0 ;;
    --no-compile) COMPILE=0 ;;
    *)
      awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"
      exit 1
      ;;
  esac
done
if [[ $PREPARE == 1 ]]; then
  prepare
else
  main
fi
