package dev.owlery.engine.onednn.testing;

import dev.owlery.engine.onednn.OneDnnLibrary;
import dev.owlery.engine.testing.SetupScripts;

/**
 * The tests' way to the library, for every module whose tests run the oneDNN kernels:
 * {@code scripts/ensure-onednn.sh} once per JVM (it installs oneDNN as root), then load.
 */
public final class OneDnnTesting {

  private OneDnnTesting() {}

  /** The process's oneDNN; fails with the script's words when it cannot be had. */
  public static OneDnnLibrary library() {
    SetupScripts.ensure("ensure-onednn.sh");
    return OneDnnLibrary.load();
  }
}
