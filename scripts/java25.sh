# Sourced by ./owlery and .ci/run: exports JAVA_HOME pointing at a JDK 25 or exits with a clear message.
owlery_java_major() {
  "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}
owlery_pick_java25() {
  local candidate
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/jdk-25; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] && [ "$(owlery_java_major "$candidate")" -ge 25 ] 2>/dev/null; then
      export JAVA_HOME="$candidate"
      return 0
    fi
  done
  echo "owlery: Java 25 is required but was not found (JAVA_HOME='${JAVA_HOME:-}' and /usr/lib/jvm/*25* checked)." >&2
  echo "owlery: install a JDK 25 (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  exit 1
}
owlery_pick_java25
