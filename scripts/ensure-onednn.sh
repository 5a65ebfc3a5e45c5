#!/usr/bin/env bash
# Makes sure the system's oneDNN (Debian's libdnnl2: libdnnl.so.2) is there for the onednn-bf16
# kernels: as root (CI) it is installed with apt-get when missing, so a fresh machine runs their
# tests too; otherwise the script says what to install and exits 2.
# Usage: scripts/ensure-onednn.sh
set -euo pipefail

have() { /sbin/ldconfig -p | grep -q 'libdnnl\.so\.2 '; }

if ! have; then
  if [ "$(id -u)" = 0 ]; then
    echo "ensure-onednn: installing libdnnl2 (apt-get)..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libdnnl2) >&2 || true
  fi
  if ! have; then
    echo "ensure-onednn: libdnnl.so.2 is not installed; as root: apt-get update && apt-get install -y libdnnl2" >&2
    exit 2
  fi
fi
echo "ensure-onednn: $(/sbin/ldconfig -p | grep -m1 'libdnnl\.so\.2 ' | sed 's/.*=> //')"
