package dev.owlery.cli.node;

import java.util.ArrayList;
import java.util.List;

/** The JVM options of the node processes that tests start. */
public final class TestNodeJvm {

  /**
   * C1 only. A test's nodes run a tiny model for seconds, and C2 compiling the same hot code in
   * three to seven JVMs at once on two cores cost more than it won back: LocalClusterParityTest's
   * seven clusters took 130-151 s with C2, 102 s without. Without C2 the Vector API runs its Java
   * fallback, which computes the same lanes (a reduction may add them in another order: within
   * every test's tolerance); the intrinsic vector kernels are checked in the engine's tests.
   */
  private static final String C1_ONLY = "-XX:TieredStopAtLevel=1";

  private TestNodeJvm() {}

  /** {@code options} after the options every test node gets. */
  public static List<String> with(String... options) {
    List<String> all = new ArrayList<>(List.of(C1_ONLY));
    all.addAll(List.of(options));
    return List.copyOf(all);
  }
}
