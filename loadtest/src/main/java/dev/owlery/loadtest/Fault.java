package dev.owlery.loadtest;

import java.time.Duration;

/**
 * A fault to inject during a run, {@code at} after the first level's start: {@code kind} names
 * what to break (e.g. kill-shard); the harness that started the cluster knows how.
 */
public record Fault(String kind, Duration at) {

  /**
   * Reads {@code KIND@TIME}, e.g. {@code kill-shard@30s}.
   *
   * @throws IllegalArgumentException naming the form expected and what was given
   */
  public static Fault parse(String spec) {
    int at = spec.lastIndexOf('@');
    if (at <= 0 || at == spec.length() - 1) {
      throw new IllegalArgumentException("--chaos must be KIND@TIME, e.g. kill-shard@30s, got '%s'".formatted(spec));
    }
    return new Fault(spec.substring(0, at), Durations.parse("--chaos " + spec + ": the time", spec.substring(at + 1)));
  }

  @Override
  public String toString() {
    return kind + "@" + LoadReport.number(at.toNanos() / 1e9) + "s";
  }
}
