#!/usr/bin/env bash
# Installs what lamina needs to build and test, from Debian 12's packages. Safe to run again.
# Boost is named by version on purpose: an unversioned libboost-*-dev package is 1.74 and would
# remove the 1.81 packages lamina builds against.
set -euo pipefail
packages=(
  cmake g++ ccache pkg-config zlib1g-dev
  libboost1.81-dev libboost-json1.81-dev
  libdnnl-dev ocl-icd-opencl-dev opencl-headers
  libclblast-dev pocl-opencl-icd clinfo
  doctest-dev libcli11-dev libhdf5-dev libpng-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
  clang-14 libclang-rt-14-dev libomp-14-dev python3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
