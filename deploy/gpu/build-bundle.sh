#!/usr/bin/env bash
# Builds deploy/gpu/bundle/ (git-ignored) on a CPU machine: what deploy/gpu/device-check.sh needs on
# the GPU machine, which has no Java and no network.
#   jre.tar.gz  a jlink'd Java 25 runtime holding only $MODULES, packed (device-check.sh unpacks it)
#   lib/        engine-cuda's jar and its runtime class path (engine, JCuda, Jackson, protobuf), built
#               here with the Maven wrapper; JCuda's natives jar keeps only the driver and runtime
#               bindings (nvPTXCompiler and NVRTC serve CPU-side tests or do not load there)
#   COMMIT      the commit the bundle was built from
# The fixtures are not copied: testdata/ is tracked, so it travels with the checkout.
# Usage: deploy/gpu/build-bundle.sh   (prints the bundle's size; fails when it is too big to travel)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=$root/deploy/gpu/bundle
# The runtime's modules. jdeps (below) must find no other module the jars use, except $LEFT_OUT.
MODULES=java.base,java.logging,java.management,jdk.incubator.vector,jdk.unsupported
# Used by classes the check never loads: java.desktop is ImageIO (image decoding: the check runs no
# vision tower) and java.beans (Jackson's optional annotations), java.sql Jackson's optional date types.
LEFT_OUT=java.desktop,java.sql
# The bundle alone, and what the device tool sends: the checkout's tree plus the bundle.
BUNDLE_LIMIT=$((60 * 1000 * 1000))
TRAVEL_LIMIT=$((64 * 1024 * 1024))

fail() {
  echo "build-bundle: $*" >&2
  exit 1
}

. "$root/scripts/java25.sh"
cd "$root"
rm -rf "$bundle"
mkdir -p "$bundle/lib"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "build-bundle: building engine-cuda and its runtime class path (./mvnw package)" >&2
nice -n 10 ./mvnw -B -q -o -pl engine-cuda -am -DskipTests package dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$bundle/lib" >&2 || fail "the Maven build failed (see above)"
cp engine-cuda/target/owlery-engine-cuda-*.jar "$bundle/lib/"
rm -f "$bundle"/lib/owlery-engine-*-tests.jar
natives=$(ls "$bundle"/lib/jcuda-natives-*-linux-x86_64.jar 2>/dev/null) || fail "no jcuda-natives jar in $bundle/lib"
zip -q -d "$natives" 'lib/libJNvPTXCompiler-*' 'lib/libJNvrtc-*' || fail "cannot slim $natives"
unzip -l "$natives" | grep -q 'lib/libJCudaDriver-' || fail "$natives lost libJCudaDriver"

used=$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps "$bundle"/lib/*.jar) \
  || fail "jdeps failed on $bundle/lib"
missing=$(comm -23 <(tr , '\n' <<<"$used" | sort -u) <(tr , '\n' <<<"$MODULES,$LEFT_OUT" | sort -u))
[ -z "$missing" ] || fail "the jars use modules the runtime lacks: $(echo $missing); add them to MODULES (or LEFT_OUT, saying why)"

"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --compress=zip-9 --output "$work/jre" || fail "jlink failed"
"$work/jre/bin/java" --add-modules jdk.incubator.vector --version >/dev/null 2>&1 || fail "the linked runtime does not start"
tar -C "$work" -czf "$bundle/jre.tar.gz" jre
{ git rev-parse HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >"$bundle/COMMIT"
git diff --quiet HEAD 2>/dev/null || echo -n " with uncommitted changes" >>"$bundle/COMMIT"

bundle_bytes=$(du -sb "$bundle" | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "build-bundle: $bundle: $(mib "$bundle_bytes") (jre.tar.gz $(mib "$(stat -c %s "$bundle/jre.tar.gz")"), lib/ $(mib "$(du -sb "$bundle/lib" | cut -f1)") in $(ls "$bundle/lib" | wc -l) jars); with the checkout's $(mib "$tree_bytes") it sends $(mib $((bundle_bytes + tree_bytes))) of the device tool's 64 MiB"
[ "$bundle_bytes" -lt "$BUNDLE_LIMIT" ] || fail "the bundle is $bundle_bytes bytes, over $BUNDLE_LIMIT"
[ $((bundle_bytes + tree_bytes)) -lt "$TRAVEL_LIMIT" ] || fail "the checkout and the bundle are $((bundle_bytes + tree_bytes)) bytes, over the $TRAVEL_LIMIT the device tool sends"
