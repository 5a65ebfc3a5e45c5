#!/usr/bin/env bash
# The GPU check of issues 11 and 12: runs on the GPU machine (no Java there but the bundle's; no network),
# from the repository root, after deploy/gpu/build-bundle.sh made deploy/gpu/bundle/ on a CPU machine.
# Writes OUT/summary.txt and OUT/summary.json (each step: status, seconds, its last lines), OUT/log.txt
# (every step's whole output), OUT/kernels/ (KernelCheck's files) and OUT/parity/ (ParityCheck's); the bench
# and vision steps' files stay under $TMPDIR, their Owlery/PyTorch ratios go into both summaries.
# The whole run stays under $CHECK_LIMIT seconds; exits 0 when every step passed on a
# GPU, 3 when there is no GPU, 1 otherwise. Usage: bash deploy/gpu/device-check.sh OUT
# STEPS=kernels,parity (a comma-separated list of the steps after gpu and runtime) runs only those, to
# rerun what failed inside a second start's few minutes; the others are recorded as skipped.
set -uo pipefail

out=${1:?usage: bash deploy/gpu/device-check.sh OUT}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=$root/deploy/gpu/bundle
CHECK_LIMIT=${CHECK_LIMIT:-450}
NVIDIA_SMI=${NVIDIA_SMI:-nvidia-smi}
started=$SECONDS
mkdir -p "$out/kernels" "$out/parity"
steps=$out/.steps.tsv
: >"$steps"
: >"$out/log.txt"
gpu=yes

# record NAME STATUS SECONDS DETAIL: one step's outcome (STATUS: pass, fail, no-gpu, not-built, skipped).
record() {
  local detail
  detail=$(tr '\t\n' '  ' <<<"$4" | tr -d '\000-\037' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-600)
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$detail" >>"$steps"
  printf '%-9s %-9s %4ss  %s\n' "$1" "$2" "$3" "$detail" >>"$out/summary.txt"
}

# step NAME CAP COMMAND...: runs COMMAND under timeout (CAP seconds, less if the run's limit is near),
# its output appended to log.txt, and records pass/fail with the output's last lines.
step() {
  local name=$1 cap=$2
  shift 2
  if [ -n "${STEPS:-}" ] && [ "$name" != gpu ] && [ "$name" != runtime ] && [[ ",$STEPS," != *",$name,"* ]]; then
    record "$name" skipped 0 "not in STEPS=$STEPS"
    return 0
  fi
  local left=$((CHECK_LIMIT - (SECONDS - started) - 5))
  ((cap > left)) && cap=$left
  if ((cap < 5)); then
    record "$name" fail 0 "not run: the check's $CHECK_LIMIT s were spent"
    return 1
  fi
  local t0=$SECONDS rc
  echo "=== $name: $*" >>"$out/log.txt"
  timeout --kill-after=10 "$cap" "$@" >"$out/.step.log" 2>&1
  rc=$?
  cat "$out/.step.log" >>"$out/log.txt"
  local tail_lines
  tail_lines=$(grep -v -x 'WARNING: Using incubator modules: jdk.incubator.vector' "$out/.step.log" | tail -n 3)
  if ((rc == 0)); then
    record "$name" pass $((SECONDS - t0)) "$tail_lines"
  elif ((rc == 124 || rc == 137)); then
    record "$name" fail $((SECONDS - t0)) "timed out after $cap s; $tail_lines"
  else
    record "$name" "$([ "$gpu" = no ] && echo no-gpu || echo fail)" $((SECONDS - t0)) "exit $rc: $tail_lines"
  fi
  return $rc
}

{
  echo "owlery GPU check (issue 11), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "bundle commit $(cat "$bundle/COMMIT" 2>/dev/null || echo 'none: run deploy/gpu/build-bundle.sh on a CPU machine and carry deploy/gpu/bundle')"
} >"$out/summary.txt"

# --- 1. The GPU as nvidia-smi sees it.
if ! command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
  gpu=no
  record gpu no-gpu 0 "no GPU: nvidia-smi is not installed"
elif ! step gpu 30 "$NVIDIA_SMI" --query-gpu=name,memory.total,memory.used,driver_version,compute_cap --format=csv,noheader; then
  gpu=no
fi

# --- 2. The bundle's runtime, unpacked outside the checkout.
java=""
runtime=${TMPDIR:-/tmp}/owlery-gpu-check-jre
if [ ! -f "$bundle/jre.tar.gz" ]; then
  record runtime fail 0 "no deploy/gpu/bundle/jre.tar.gz: run deploy/gpu/build-bundle.sh on a CPU machine and carry deploy/gpu/bundle"
elif rm -rf "$runtime" && mkdir -p "$runtime" \
  && step runtime 60 bash -c 'tar -C "$1" -xzf "$2" && "$1/jre/bin/java" --version' _ "$runtime" "$bundle/jre.tar.gz"; then
  java=$runtime/jre/bin/java
fi
run_java=("$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmx16g
  -cp "$bundle/lib/*")

if [ -n "$java" ]; then
  # --- 3. The device through JCuda's driver API, and LLaMA-2-7B's memory plan on it.
  step device 60 "${run_java[@]}" dev.owlery.engine.cuda.plan.DevicePlanReport 0
  # --- 4. Each kernel against the CPU kernels on random inputs (engine-cuda's check package).
  step kernels 240 "${run_java[@]}" dev.owlery.engine.cuda.check.KernelCheck "$out/kernels"
  # --- 5. Parity: the device decoder (DeviceDecoderSlice) on tiny-owl2, logits at every position and
  #        greedy step within 1e-3 of the CPU and ids exact, TP 2 on this GPU equal to TP 1, and
  #        stories260k's 7 greedy cases (64 ids each) exact. TODO(issue 11): a synthetic 1.1B GPU vs CPU.
  step parity 90 "${run_java[@]}" dev.owlery.engine.cuda.check.ParityCheck "$out/parity" "$root/testdata"
else
  for name in device kernels parity; do
    record "$name" "$([ "$gpu" = no ] && echo no-gpu || echo fail)" 0 "not run: no Java runtime (the runtime step says why)"
  done
fi

# --- 6. Bench: LLaMA-2-7B's shape (synthetic F16 weights, BENCH_LAYERS of its 32 layers), batch-1 decode
#        eager and from graphs against a device-to-device copy's bandwidth, a 512-token prefill, batched
#        decode at 16 and 64; then PyTorch eager at the same shapes on the same GPU. Their files stay outside
#        OUT (the device tool brings back 8 files); the Owlery/PyTorch ratios go into the summary.
BENCH_LAYERS=${BENCH_LAYERS:-32}
PYTHON=${PYTHON:-python3}
bench=${TMPDIR:-/tmp}/owlery-gpu-check-bench
rm -rf "$bench" && mkdir -p "$bench"
if [ -n "$java" ]; then
  step bench 150 "${run_java[@]}" dev.owlery.engine.cuda.check.BenchCheck "$bench" --layers "$BENCH_LAYERS"
else
  record bench "$([ "$gpu" = no ] && echo no-gpu || echo fail)" 0 "not run: no Java runtime (the runtime step says why)"
fi
step pytorch 120 "$PYTHON" "$root/deploy/gpu/torch_bench.py" "$bench/torch.jsonl" --layers "$BENCH_LAYERS"

# --- 7. Vision (issue 12): the device vision tower (DeviceVisionTower) on tiny-owl2 against the CPU tower
#        (float32 within 2e-4, a pass of three equal to each image alone, F16 weights), then images/s of
#        ViT-L/14 at 448 px + the abstractor in passes of 1 and 16 on synthetic F16 weights; then
#        transformers' CLIPVisionModel (F16, eager) at the same passes. Files under $TMPDIR, ratios below.
vision=${TMPDIR:-/tmp}/owlery-gpu-check-vision
rm -rf "$vision" && mkdir -p "$vision"
if [ -n "$java" ]; then
  step vision 100 "${run_java[@]}" dev.owlery.engine.cuda.check.VisionCheck "$vision" "$root/testdata"
else
  record vision "$([ "$gpu" = no ] && echo no-gpu || echo fail)" 0 "not run: no Java runtime (the runtime step says why)"
fi
step torch-vision 80 "$PYTHON" "$root/deploy/gpu/torch_vision_bench.py" "$vision/torch.jsonl"

# bench_ratios: each of BenchCheck's or VisionCheck's measurements (but the load times), PyTorch's same one
# (graph replays against eager) and Owlery/PyTorch, tab-separated: name, owlery, torch, ratio, unit ("none" where missing).
bench_ratios() {
  awk '
    function field(line, name,   m) {
      if (!match(line, "\"" name "\":(\"[^\"]*\"|[^,}]*)")) return "none"
      m = substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
      gsub(/"/, "", m)
      return m == "null" ? "none" : m
    }
    FILENAME == ARGV[1] { torch[field($0, "measurement")] = field($0, "value"); next }
    {
      name = field($0, "measurement"); owlery = field($0, "value")
      if (name ~ /load_seconds$/) next
      other = name; sub(/graphs/, "eager", other)
      t = (other in torch) ? torch[other] : "none"
      ratio = (owlery != "none" && t != "none" && t + 0 > 0) ? sprintf("%.3f", owlery / t) : "none"
      printf "%s\t%s\t%s\t%s\t%s\n", name, owlery, t, ratio, field($0, "unit")
    }' "$1" "$2"
}
: >"$bench/ratios.tsv"
# add_ratios OWLERY_ROWS TORCH_ROWS: appends their pairs to ratios.tsv (none when Owlery's step wrote nothing).
add_ratios() {
  [ -f "$1" ] || return 0
  [ -f "$2" ] || : >"$2"
  bench_ratios "$2" "$1" >>"$bench/ratios.tsv"
}
add_ratios "$bench/bench.jsonl" "$bench/torch.jsonl"
add_ratios "$vision/vision_bench.jsonl" "$vision/torch.jsonl"
while IFS=$'\t' read -r name owlery torch ratio unit; do
  printf 'ratio     %-36s owlery %10s  torch %10s  %s  = %sx\n' "$name" "$owlery" "$torch" "$unit" "$ratio" \
    >>"$out/summary.txt"
done <"$bench/ratios.tsv"

status=0
if [ "$gpu" = no ]; then
  status=3
  echo "result: no GPU (exit 3)" >>"$out/summary.txt"
elif awk -F '\t' '$2 == "fail" { found = 1 } END { exit !found }' "$steps"; then
  status=1
  echo "result: failed (exit 1)" >>"$out/summary.txt"
else
  echo "result: every step passed (exit 0)" >>"$out/summary.txt"
fi
echo "total $((SECONDS - started)) s" >>"$out/summary.txt"

# summary.json, written without Python or jq: details hold no tabs, newlines or control characters.
json_string() {
  local text=${1//\\/\\\\}
  printf '"%s"' "${text//\"/\\\"}"
}
{
  printf '{\n  "exit_status": %d,\n  "gpu": %s,\n  "seconds": %d,\n  "bundle_commit": %s,\n  "steps": [' \
    "$status" "$([ "$gpu" = no ] && echo false || echo true)" $((SECONDS - started)) \
    "$(json_string "$(cat "$bundle/COMMIT" 2>/dev/null)")"
  separator=""
  while IFS=$'\t' read -r name outcome seconds detail; do
    printf '%s\n    {"step": %s, "status": %s, "seconds": %d, "detail": %s}' "$separator" "$(json_string "$name")" \
      "$(json_string "$outcome")" "$seconds" "$(json_string "$detail")"
    separator=","
  done <"$steps"
  printf '\n  ],\n  "bench": ['
  separator=""
  while IFS=$'\t' read -r name owlery torch ratio unit; do
    printf '%s\n    {"measurement": %s, "owlery": %s, "torch": %s, "ratio": %s, "unit": %s}' "$separator" \
      "$(json_string "$name")" "${owlery/none/null}" "${torch/none/null}" "${ratio/none/null}" "$(json_string "$unit")"
    separator=","
  done <"$bench/ratios.tsv"
  printf '\n  ]\n}\n'
} >"$out/summary.json"
rm -f "$steps" "$out/.step.log"
cat "$out/summary.txt"
exit $status
