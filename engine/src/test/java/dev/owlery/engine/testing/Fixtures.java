package dev.owlery.engine.testing;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the shared test fixtures: {@code $OWLERY_FIXTURES}, else {@code ../shared/fixtures} beside
 * the checkout. Where they are absent a test is skipped with a message saying so, except under CI
 * ({@code CI=true}), where the fixtures must be present and their absence fails the test.
 */
public final class Fixtures {

  private Fixtures() {}

  /** The fixtures folder, or null when none is found. */
  public static Path root() {
    for (String candidate : new String[] {System.getenv("OWLERY_FIXTURES"), System.getenv("OWLERY_FIXTURES_DEFAULT")}) {
      if (candidate != null && !candidate.isBlank() && Files.isDirectory(Path.of(candidate))) {
        return Path.of(candidate).toAbsolutePath().normalize();
      }
    }
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null) {
      Path candidate = dir.resolveSibling("shared").resolve("fixtures");
      if (Files.isDirectory(candidate)) {
        return candidate.normalize();
      }
      dir = dir.getParent();
    }
    return null;
  }

  /** {@code fixtures/<relative>}, or the test is skipped (failed under CI) when it is absent. */
  public static Path require(String relative) {
    Path root = root();
    Path path = root == null ? null : root.resolve(relative);
    boolean present = path != null && Files.exists(path);
    if (!present && "true".equalsIgnoreCase(System.getenv("CI"))) {
      fail("fixture '%s' is missing under CI; set OWLERY_FIXTURES to the shared fixtures folder".formatted(relative));
    }
    assumeTrue(present, () -> "skipped: fixture '%s' not found (set OWLERY_FIXTURES to the shared/fixtures folder)"
        .formatted(relative));
    return path;
  }

  public static Path stories260k() {
    return require("stories260k/hf");
  }

  public static Path tinyOwl2() {
    return require("tiny-owl2");
  }

  public static Path llama2Tokenizer() {
    return require("llama2-tokenizer");
  }
}
