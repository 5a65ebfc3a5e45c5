#!/usr/bin/env bash
# Runs the CUDA kernels on the CPU: compiles engine-cuda/src/main/cuda/*.cu for the host with
# engine-cuda/src/test/cuda/owl_emulate.h standing in for the GPU (each CUDA thread a fiber) and
# checks each kernel against a float64 loop at odd sizes. It proves index arithmetic, bounds and
# barriers without a GPU; GPU numbers come from KernelCheck on a GPU machine. Needs clang-19 (as
# scripts/build-ptx.sh); not part of the Maven build.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++-19 >/dev/null 2>&1; then
  echo "emulate-kernels: clang++-19 is missing; install it with 'apt-get install -y clang-19' (as root)" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang++-19 -std=c++20 -O1 -ffp-contract=off -fno-strict-aliasing -Wall -Wno-unused-function \
  -I engine-cuda/src/test/cuda -o "$out/emulate_kernels" engine-cuda/src/test/cuda/emulate_kernels.cpp
"$out/emulate_kernels"
