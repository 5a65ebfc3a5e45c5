#!/usr/bin/env bash
# Run after `./mvnw verify`: fails when any test was skipped or any test class ran no test
# (a class whose @BeforeAll aborted shows as "Tests run: 0"). Reads the surefire XML reports.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
reports=(*/target/surefire-reports/TEST-*.xml)
if [ "${#reports[@]}" -eq 0 ]; then
  echo "check-test-reports: no surefire reports under */target/surefire-reports" >&2
  exit 1
fi
bad=0 classes=0 total=0
for report in "${reports[@]}"; do
  header="$(grep -m1 -o '<testsuite [^>]*>' "$report")"
  tests="$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$header")"
  skipped="$(sed -n 's/.* skipped="\([0-9]*\)".*/\1/p' <<<"$header")"
  classes=$((classes + 1)) total=$((total + tests))
  if [ "$tests" = 0 ]; then
    echo "check-test-reports: $report ran no test" >&2; bad=1
  fi
  if [ "${skipped:-0}" != 0 ]; then
    echo "check-test-reports: $report skipped $skipped test(s):" >&2
    grep -o '<skipped[^>]*>' "$report" | head -n 3 >&2 || true
    bad=1
  fi
done
echo "check-test-reports: $classes test classes, $total tests, none skipped, none empty"
[ "$bad" = 0 ] || { echo "check-test-reports: FAILED (see above)" >&2; exit 1; }
