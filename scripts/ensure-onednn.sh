#!/usr/bin/env bash
# Makes sure the system's oneDNN (libdnnl.so.3 or libdnnl.so.2: Debian 12's libdnnl2, later
# releases' libdnnl3) is there for the onednn-bf16 kernels: as root (CI) it is installed with
# apt-get when missing, so a fresh machine runs their tests too; otherwise the script says what to
# install and exits 2.
# Usage: scripts/ensure-onednn.sh
set -euo pipefail

have() { /sbin/ldconfig -p | grep -E 'libdnnl\.so\.[23] ' >/dev/null; } # reads all: -q would cut ldconfig off (pipefail)

if ! have; then
  if [ "$(id -u)" = 0 ]; then
    echo "ensure-onednn: installing oneDNN (apt-get)..." >&2
    package=libdnnl2
    apt-get update -qq >&2 || true
    if apt-cache show libdnnl3 >/dev/null 2>&1; then package=libdnnl3; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2 || true
  fi
  if ! have; then
    echo "ensure-onednn: oneDNN (libdnnl.so.3 or .so.2) is not installed; as root: apt-get update && apt-get install -y libdnnl2 (Debian 12) or libdnnl3" >&2
    exit 2
  fi
fi
echo "ensure-onednn: $(/sbin/ldconfig -p | grep -m1 -E 'libdnnl\.so\.[23] ' | sed 's/.*=> //')"
