#!/usr/bin/env bash
# Opens a `loadtest --report` page in headless Chromium (Debian's `chromium`) and checks it the way
# a reader would see it: the page renders (SCREENSHOT.png is written), every plot shows data (each
# <svg class="plot"> of the DOM after the page's script ran holds a series with data points), and
# the browser logged no console message (no script error, nothing fetched that failed).
# Prints one line per plot: "plot ID: S series, P points"; exits 1 when a check fails.
# Usage: scripts/check-loadtest-report.sh REPORT.html SCREENSHOT.png
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 REPORT.html SCREENSHOT.png" >&2
  exit 2
fi
if ! command -v chromium >/dev/null; then
  # Debian's package; as root (CI) it is installed here, so a fresh machine runs the check too.
  if [ "$(id -u)" = 0 ]; then
    echo "check-loadtest-report: installing chromium (apt-get)..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 || true
  fi
  if ! command -v chromium >/dev/null; then
    echo "check-loadtest-report: chromium is not installed; as root: apt-get update && apt-get install -y chromium" >&2
    exit 2
  fi
fi
report=$(realpath "$1")
shot=$(realpath -m "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --no-sandbox: CI runs as root, where Chromium refuses its sandbox. The virtual time budget lets
# the page's script run before the DOM is dumped. Every run is bounded: a hung browser fails.
flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
  --enable-logging=stderr --v=0 --virtual-time-budget=3000)
timeout 120 chromium "${flags[@]}" --dump-dom "file://$report" >"$work/dom.html" 2>"$work/dom.log"
timeout 120 chromium "${flags[@]}" --window-size=1280,2400 --hide-scrollbars --screenshot="$shot" \
  "file://$report" >/dev/null 2>"$work/screenshot.log"

failed=0
if [ ! -s "$shot" ]; then
  echo "check-loadtest-report: no screenshot was written to $shot" >&2
  failed=1
fi
if grep -h ':CONSOLE' "$work/dom.log" "$work/screenshot.log" >&2; then
  echo "check-loadtest-report: the page logged the console messages above" >&2
  failed=1
fi
# One plot per <svg class="plot">; its series are <path class="series" data-points="N">.
awk '
  match($0, /<svg id="[^"]*" class="plot"/) { id = substr($0, RSTART + 9); sub(/".*/, "", id); order[++n] = id; series[id] = 0; points[id] = 0 }
  {
    line = $0
    while (match(line, /class="series" data-points="[0-9]+"/)) {
      count = substr(line, RSTART, RLENGTH); gsub(/[^0-9]/, "", count)
      if (count + 0 > 0) { series[id]++; points[id] += count }
      line = substr(line, RSTART + RLENGTH)
    }
  }
  END {
    if (n == 0) { print "check-loadtest-report: the page has no plot" > "/dev/stderr"; exit 1 }
    bad = 0
    for (i = 1; i <= n; i++) {
      id = order[i]
      printf "plot %s: %d series, %d points\n", id, series[id], points[id]
      if (series[id] == 0) { print "check-loadtest-report: plot " id " has no data point" > "/dev/stderr"; bad = 1 }
    }
    exit bad
  }' "$work/dom.html" || failed=1
exit $failed
