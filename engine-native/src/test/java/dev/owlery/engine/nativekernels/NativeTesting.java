package dev.owlery.engine.nativekernels;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The tests' way to the library: {@code scripts/ensure-cc.sh} once per JVM (it installs gcc as
 * root), then load (the build's tests keep it in each module's {@code target/native-cache}: the
 * parent pom sets {@code OWLERY_NATIVE_CACHE}).
 */
final class NativeTesting {

  private static boolean ensured;

  private NativeTesting() {}

  /** The process's library; fails with the script's words when no compiler can be had. */
  static synchronized NativeCpuLibrary library() {
    if (!ensured) {
      Path script = Path.of("..", "scripts", "ensure-cc.sh");
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
    return NativeCpuLibrary.load();
  }
}
