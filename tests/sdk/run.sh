#!/usr/bin/env bash
# The SDK as a third party meets it: installs lamina into a temporary prefix, builds the plugin
# template (sdk/template) and the example plugins (plugins/examples/*) out of tree against it, and
# uses them through LAMINA_PLUGIN_PATH: the template's own test; a model with the GELU and
# HardSwish layers and the AdamW optimizer trained from a JSON config, saved, reloaded (same
# predictions, same optimizer state); the same file without the plugins (a clear error); the
# installed `lamina` tool training from that config, and with the Lion optimizer from a config
# whose plugin_paths is relative to its folder. Also a plugin built with pkg-config.
#
#   tests/sdk/run.sh BUILD_DIR SOURCE_DIR      (ctest runs it as sdk_out_of_tree)
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
  echo "skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
# Out-of-tree builds live under the build tree's oot/ (made at configure time), one fresh folder
# per run, removed afterwards.
mkdir -p "$build/oot"
work=$(mktemp -d "$build/oot/sdk-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
step() { echo "== [${SECONDS}s] $*"; }
fail() { echo "FAILED: $*"; exit 1; }

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/lamina lib/liblamina.so include/lamina/lamina_plugin.h include/lamina/sdk/plugin.hpp \
         include/lamina/model.hpp lib/cmake/lamina/laminaConfig.cmake lib/cmake/lamina/LaminaPlugin.cmake \
         lib/pkgconfig/lamina.pc lib/lamina/plugins/lamina_layer_core.so lib/lamina/plugins/lamina_layer_core.json \
         lib/lamina/plugins/lamina_backend_reference.so; do
  [[ -e "$prefix/$f" ]] || fail "the install has no $f"
done

step "the installed tool runs and finds the installed plugins, with no environment"
env -u LAMINA_PLUGIN_PATH -u LD_LIBRARY_PATH "$prefix/bin/lamina" plugins > "$work/plugins.txt"
grep -q "$prefix/lib/lamina/plugins/lamina_layer_core.so" "$work/plugins.txt" ||
  { cat "$work/plugins.txt"; fail "'lamina plugins' does not list the installed core layers"; }

configure() {  # configure SOURCE BUILD: an out-of-tree project against the installed prefix only
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF > "$2.configure.log" 2>&1 || { cat "$2.configure.log"; fail "configuring $1"; }
  cmake --build "$2" -j2 > "$2.build.log" 2>&1 || { cat "$2.build.log"; fail "building $1"; }
}

step "the template: copied, built and tested as a third party would"
cp -r "$source/sdk/template" "$work/template"
configure "$work/template" "$work/template/build"
ctest --test-dir "$work/template/build" --output-on-failure > "$work/template.ctest.log" 2>&1 ||
  { cat "$work/template.ctest.log"; fail "the template's test"; }

step "the examples: gelu (ops only), hard_swish (own kernel on onednn), adamw (optimizer with slots), lion (optimizer with an op)"
for example in gelu hard_swish adamw lion; do
  configure "$source/plugins/examples/$example" "$work/$example"
  kind=layer
  [[ $example == adamw || $example == lion ]] && kind=optimizer
  [[ -f "$work/$example/lamina_${kind}_$example.json" ]] || fail "$example: no manifest beside the plugin"
done
plugin_path="$work/gelu:$work/hard_swish:$work/adamw"

step "a model with the plugins, from a JSON config: train, save, reload, compare"
configure "$source/tests/sdk/train_and_reload" "$work/driver"
LAMINA_PLUGIN_PATH="$plugin_path" "$work/driver/train_and_reload" "$source/tests/sdk/custom_model.json" \
  "$work/model.h5" | tee "$work/driver.log"

step "the saved model without the plugins: the error names the class and the folders searched"
if env -u LAMINA_PLUGIN_PATH "$work/driver/train_and_reload" --load "$work/model.h5" > "$work/noplugin.log" 2>&1; then
  fail "loading a model with third-party layers worked without their plugins"
fi
cat "$work/noplugin.log"
grep -q "unknown layer class 'GELU'" "$work/noplugin.log" || fail "the error does not name the class GELU"
grep -q "Plugin folders searched: .*$prefix/lib/lamina/plugins" "$work/noplugin.log" ||
  fail "the error does not list the folders searched"

step "the installed lamina tool trains from the same config; HardSwish runs its kernel on onednn"
LAMINA_PLUGIN_PATH="$plugin_path" LAMINA_PROFILE=1 "$prefix/bin/lamina" train "$source/tests/sdk/custom_model.json" \
  --backend onednn --limit 256 --epochs 1 --verbose 0 --output "$work/cli.h5" > "$work/cli.log" 2>&1 ||
  { cat "$work/cli.log"; fail "lamina train with the plugins"; }
grep -q "hard_swish.hard_swish" "$work/cli.log" || { cat "$work/cli.log"; fail "no hard_swish kernel in the profile"; }
LAMINA_PLUGIN_PATH="$plugin_path" "$prefix/bin/lamina" summary "$work/cli.h5" > "$work/summary.txt"
grep -q "GELU" "$work/summary.txt" && grep -q "HardSwish" "$work/summary.txt" ||
  { cat "$work/summary.txt"; fail "the summary lacks the plugin layers"; }

step "Lion from a project folder: plugin_paths relative to the config; a misspelt key is refused"
mkdir -p "$work/project"
python3 - "$source/tests/sdk/custom_model.json" "$work/project" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
layers = [l for l in cfg["model"]["config"]["layers"] if l["class_name"] in ("Flatten", "Dense")]
cfg["model"]["config"]["layers"] = layers
cfg["plugin_paths"] = ["../lion"]
cfg["compile"]["optimizer"] = {"class_name": "Lion", "config": {"learning_rate": 0.0001, "beta_1": 0.9}}
json.dump(cfg, open(sys.argv[2] + "/lion.json", "w"))
cfg["compile"]["optimizer"]["config"] = {"betta_1": 0.9}
json.dump(cfg, open(sys.argv[2] + "/misspelt.json", "w"))
PY
(cd / && env -u LAMINA_PLUGIN_PATH LAMINA_PROFILE=1 "$prefix/bin/lamina" train "$work/project/lion.json" --backend onednn \
  --limit 256 --epochs 1 --verbose 0 --output "$work/lion.h5" > "$work/lion.log" 2>&1) ||
  { cat "$work/lion.log"; fail "lamina train with Lion from a relative plugin_paths"; }
grep -q "lion.direction" "$work/lion.log" || { cat "$work/lion.log"; fail "no lion.direction kernel in the profile"; }
if (cd / && env -u LAMINA_PLUGIN_PATH "$prefix/bin/lamina" train "$work/project/misspelt.json" --limit 64 \
    --epochs 1 > "$work/misspelt.log" 2>&1); then
  fail "a misspelt Lion key trained"
fi
grep -q "Lion: unknown config key 'betta_1' (did you mean 'beta_1'?)" "$work/misspelt.log" ||
  { cat "$work/misspelt.log"; fail "the misspelt key's error"; }

step "pkg-config: a plugin compiled with the flags lamina.pc gives"
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags lamina)
mkdir -p "$work/pc_plugins"
c++ -O1 -shared -fPIC -fvisibility=hidden $flags "$work/template/scaled_tanh.cpp" -o "$work/pc_plugins/scaled_tanh.so" \
  -lboost_json
LAMINA_PLUGIN_PATH="$work/pc_plugins" "$prefix/bin/lamina" plugins > "$work/pc_plugins.txt"
grep -q "^my_plugin .* yes" "$work/pc_plugins.txt" && grep -q "$work/pc_plugins/scaled_tanh.so" "$work/pc_plugins.txt" ||
  { cat "$work/pc_plugins.txt"; fail "the pkg-config plugin is not usable"; }
echo "all SDK checks passed in ${SECONDS}s"
