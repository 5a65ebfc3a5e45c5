package dev.owlery.engine.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the test fixtures: {@code $OWLERY_FIXTURES} when set, else the repository's own
 * {@code testdata/} folder (found from the working directory upwards, or through
 * {@code OWLERY_FIXTURES_DEFAULT}, which the build sets). A missing fixture fails the test with
 * its path: nothing is skipped for lack of a file.
 */
public final class Fixtures {

  private Fixtures() {}

  /** The fixtures folder; fails the test when there is none. */
  public static Path root() {
    String override = System.getenv("OWLERY_FIXTURES");
    if (override != null && !override.isBlank()) {
      Path path = Path.of(override).toAbsolutePath().normalize();
      if (!Files.isDirectory(path)) {
        fail("OWLERY_FIXTURES is %s, which is not a folder".formatted(path));
      }
      return path;
    }
    String fromBuild = System.getenv("OWLERY_FIXTURES_DEFAULT");
    if (fromBuild != null && !fromBuild.isBlank() && Files.isDirectory(Path.of(fromBuild))) {
      return Path.of(fromBuild).toAbsolutePath().normalize();
    }
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isRegularFile(dir.resolve("testdata").resolve("SHA256SUMS"))) {
        return dir.resolve("testdata").normalize();
      }
    }
    return fail("no testdata/ folder (with SHA256SUMS) above %s, and OWLERY_FIXTURES is not set"
        .formatted(Path.of("").toAbsolutePath()));
  }

  /** {@code <fixtures>/<relative>}; a missing file fails the test with the path it looked for. */
  public static Path require(String relative) {
    Path path = root().resolve(relative);
    if (!Files.exists(path)) {
      fail("fixture %s is missing (fixtures folder %s)".formatted(path, root()));
    }
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
