package dev.owlery.engine.nativekernels;

import dev.owlery.engine.testing.SetupScripts;

/**
 * The tests' way to the library: {@code scripts/ensure-cc.sh} once per JVM (it installs gcc as
 * root), then load (the build's tests keep it in each module's {@code target/native-cache}: the
 * parent pom sets {@code OWLERY_NATIVE_CACHE}).
 */
final class NativeTesting {

  private NativeTesting() {}

  /** The process's library; fails with the script's words when no compiler can be had. */
  static NativeCpuLibrary library() {
    SetupScripts.ensure("ensure-cc.sh");
    return NativeCpuLibrary.load();
  }
}
