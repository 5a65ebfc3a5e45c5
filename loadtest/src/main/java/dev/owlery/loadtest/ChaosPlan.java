package dev.owlery.loadtest;

import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * The faults a run injects and how a stalled request is told. The injector (from the harness that
 * started the cluster) breaks what a fault names and says what it did, e.g. "killed shard-0"; it
 * throws when it cannot.
 *
 * @param stallThreshold a request stalled when it waited longer than this for a token (or its end)
 */
public record ChaosPlan(List<Fault> faults, Duration stallThreshold, Function<Fault, String> injector) {

  /** No fault. */
  public static final ChaosPlan NONE = new ChaosPlan(List.of(), Duration.ofSeconds(1), fault -> {
    throw new IllegalStateException("no fault was planned");
  });

  public ChaosPlan {
    faults = List.copyOf(faults);
  }
}
