package dev.owlery.engine.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The repository's {@code scripts/ensure-*.sh}, for tests that need something of the system (oneDNN,
 * a C compiler): each runs once per JVM, installing what is missing as root; a failure carries the
 * script's words.
 */
public final class SetupScripts {

  private static final Set<String> RUN = new HashSet<>();

  private SetupScripts() {}

  /** Runs {@code scripts/NAME} (from a module's folder) unless this JVM already has. */
  public static synchronized void ensure(String name) {
    if (RUN.contains(name)) {
      return;
    }
    Path script = Path.of("..", "scripts", name);
    try {
      Process process = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true).start();
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(10, TimeUnit.MINUTES) || process.exitValue() != 0) {
        throw new IllegalStateException(script + " failed:\n" + output);
      }
    } catch (IOException e) {
      throw new IllegalStateException("could not run " + script, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    RUN.add(name);
  }
}
