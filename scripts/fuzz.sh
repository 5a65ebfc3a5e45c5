#!/usr/bin/env bash
# Fuzzes one target for a set time: scripts/fuzz.sh TARGET DURATION (e.g. images 5m). TARGET is a
# folder of testdata/fuzz/; DURATION a Jazzer duration (30s, 5m, 1h). The corpus libFuzzer grows
# stays in <module>/.cifuzz-corpus/ (ignored) for the next run; crashing inputs are moved into
# testdata/fuzz/TARGET/, where every build then runs them as regression tests (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

targets="safetensors torch-bin pickle sentencepiece images generate-request openai-request"
if [ $# -ne 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET DURATION   (TARGET: ${targets// /, }; DURATION: e.g. 30s, 5m, 1h)" >&2
  exit 2
fi
target=$1 duration=$2
case "$target" in
  safetensors) module=engine test=dev.owlery.engine.checkpoint.SafetensorsFileFuzzTest method=read ;;
  torch-bin) module=engine test=dev.owlery.engine.checkpoint.TorchBinFileFuzzTest method=read ;;
  pickle) module=engine test=dev.owlery.engine.checkpoint.RestrictedUnpicklerFuzzTest method=load ;;
  sentencepiece) module=engine test=dev.owlery.engine.tokenizer.SentencePieceTokenizerFuzzTest method=parse ;;
  images) module=engine test=dev.owlery.engine.vision.preprocess.ImageDecoderFuzzTest method=decodeAndPreprocess ;;
  generate-request) module=coordinator test=dev.owlery.coordinator.api.RequestValidatorFuzzTest method=validate ;;
  openai-request) module=coordinator test=dev.owlery.coordinator.http.OpenAiRequestParserFuzzTest method=parse ;;
  *) echo "fuzz.sh: unknown target '$target'; one of: $targets" >&2; exit 2 ;;
esac
. ./scripts/java25.sh

# Jazzer writes findings beside the test's resources; they belong with the committed corpus.
class=${test##*.} package=${test%.*}
findings="$module/src/test/resources/${package//.//}/${class}Inputs"
status=0
# -am builds the modules the target depends on (the coordinator's tests use the engine's test jar);
# only the one fuzz test runs. An input that runs past 30 s is a finding (libFuzzer's -timeout,
# passed through Jazzer's libFuzzer argument list: a JUnit timeout would time the whole session).
JAZZER_FUZZ=1 nice ./mvnw -B -pl "$module" -am test \
  -Dtest="$test#$method" -Dsurefire.failIfNoSpecifiedTests=false \
  -Djazzer.max_duration="$duration" \
  -Djazzer.internal.arg.0=fuzz.sh -Djazzer.internal.arg.1=-timeout=30 || status=$?
moved=0
if [ -d "$findings" ]; then
  while IFS= read -r -d '' file; do
    mv "$file" "testdata/fuzz/$target/"
    echo "fuzz.sh: finding saved as testdata/fuzz/$target/$(basename "$file")"
    moved=$((moved + 1))
  done < <(find "$findings" -type f -print0)
  find "$module/src/test/resources" -mindepth 1 -depth -type d -empty -delete
fi
echo "fuzz.sh: fuzzed $target for $duration; $moved new finding(s); exit status $status"
exit "$status"
