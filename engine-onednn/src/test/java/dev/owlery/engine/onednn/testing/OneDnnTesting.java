package dev.owlery.engine.onednn.testing;

import dev.owlery.engine.onednn.OneDnnLibrary;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The tests' way to the library, for every module whose tests run the oneDNN kernels:
 * {@code scripts/ensure-onednn.sh} once per JVM (it installs oneDNN as root), then load.
 */
public final class OneDnnTesting {

  private static boolean ensured;

  private OneDnnTesting() {}

  /** The process's oneDNN; fails with the script's words when it cannot be had. */
  public static synchronized OneDnnLibrary library() {
    if (!ensured) {
      Path script = Path.of("..", "scripts", "ensure-onednn.sh");
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
      ensured = true;
    }
    return OneDnnLibrary.load();
  }
}
