#!/usr/bin/env bash
# Compiles every engine-cuda/src/main/cuda/*.cu to PTX for sm_90 with Debian's clang-19 (no CUDA
# toolkit needed) and writes it as the checked-in resource
# engine-cuda/src/main/resources/dev/owlery/engine/cuda/ptx/<name>.ptx.
#
# The PTX is checked in so that the Maven build and CI need no clang; PtxSourceHashTest fails when a
# .ptx is older than its source. Rerun this script after editing a .cu or a header it includes.
#
# PTX ISA 8.0 is requested (--cuda-feature=+ptx80): JCuda 12.0.0's nvPTXCompiler, which the tests
# use to assemble every kernel for sm_90 on a machine without a GPU, reads PTX up to 8.0 only, and
# the device's newer driver JIT reads it too. clang refuses a builtin that needs a later ISA; an
# 8.1+ instruction written as inline asm is refused by the nvPTXCompiler test instead.
#
# -fno-strict-aliasing: the kernels read shared-memory tiles of 16-bit elements as 32-bit pairs.
#
# First line of each .ptx: the SHA-256 of the .cu file's bytes followed by the bytes of each header
# it includes with #include "..." (in the order of those lines), the same digest the test computes.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG=clang-19
SRC=engine-cuda/src/main/cuda
OUT=engine-cuda/src/main/resources/dev/owlery/engine/cuda/ptx
ISA=8.0

if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "build-ptx: $CLANG is not installed; installing it with apt-get (Debian's clang-19 compiles CUDA C to PTX without the CUDA toolkit)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-ptx: run 'apt-get install -y clang-19' as root, then rerun this script" >&2
    exit 1
  fi
  apt-get install -y "$CLANG" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$CLANG" >/dev/null; }
fi

mkdir -p "$OUT"
clang_version=$("$CLANG" --version | head -n 1)
shopt -s nullglob
sources=("$SRC"/*.cu)
if [ ${#sources[@]} -eq 0 ]; then
  echo "build-ptx: no .cu files in $SRC" >&2
  exit 1
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for cu in "${sources[@]}"; do
  name=$(basename "$cu" .cu)
  # The headers hashed with the source: its #include "..." lines, in order. A header that itself
  # includes a quoted header would escape the hash, so that is refused.
  headers=()
  while IFS= read -r header; do
    if grep -q '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$SRC/$header"; then
      echo "build-ptx: $SRC/$header includes another quoted header; only .cu files may include headers (the hash covers one level)" >&2
      exit 1
    fi
    headers+=("$SRC/$header")
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$cu")
  digest=$(cat "$cu" "${headers[@]}" | sha256sum | cut -d' ' -f1)

  if ! "$CLANG" --cuda-device-only --cuda-gpu-arch=sm_90 --cuda-feature=+ptx80 -nocudainc -nocudalib -O3 -fno-strict-aliasing -S \
      -Wno-unknown-cuda-version -o "$tmp" "$cu"; then
    echo "build-ptx: $cu does not compile to PTX ISA $ISA for sm_90 (a builtin that needs a later ISA is refused here)" >&2
    exit 1
  fi
  version=$(sed -n 's/^\.version[[:space:]]*//p' "$tmp")
  if [ "$version" != "$ISA" ]; then
    echo "build-ptx: $cu compiled to PTX ISA $version, not $ISA; JCuda 12.0's nvPTXCompiler reads up to $ISA only" >&2
    exit 1
  fi
  {
    echo "// owlery-source-sha256: $digest"
    echo "// from $cu${headers[*]:+ with ${headers[*]}} by $clang_version, do not edit: run scripts/build-ptx.sh"
    cat "$tmp"
  } > "$OUT/$name.ptx"
  echo "build-ptx: $OUT/$name.ptx"
done

# A .ptx whose source is gone is stale.
for ptx in "$OUT"/*.ptx; do
  if [ ! -f "$SRC/$(basename "$ptx" .ptx).cu" ]; then
    rm -f "$ptx"
    echo "build-ptx: removed $ptx (no source)"
  fi
done
