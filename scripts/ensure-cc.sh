#!/usr/bin/env bash
# Makes sure a C compiler is there for the native kernels (engine-native compiles its C on first
# use): as root (CI) gcc is installed with apt-get when no cc is found, so a fresh machine runs
# their tests too; otherwise the script says what to install and exits 2.
# Usage: scripts/ensure-cc.sh
set -euo pipefail

compiler="${OWLERY_CC:-cc}"
if ! command -v "$compiler" >/dev/null; then
  if [ "$(id -u)" = 0 ] && [ -z "${OWLERY_CC:-}" ]; then
    echo "ensure-cc: installing gcc (apt-get)..." >&2
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >&2 || true
  fi
  if ! command -v "$compiler" >/dev/null; then
    echo "ensure-cc: no C compiler '$compiler'; as root: apt-get update && apt-get install -y gcc (or set OWLERY_CC)" >&2
    exit 2
  fi
fi
echo "ensure-cc: $("$compiler" --version | head -n 1)"
