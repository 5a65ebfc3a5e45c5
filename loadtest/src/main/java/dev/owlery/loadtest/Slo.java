package dev.owlery.loadtest;

import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Service-level objectives on time to first token, time per output token and end-to-end latency,
 * each an upper bound. A request meets them when it succeeded and each of its latencies named here
 * is at most its bound (vLLM's goodput: {@code --goodput ttft:500 tpot:50}); a request with a
 * single output token has TPOT 0.
 *
 * @param bounds metric ("ttft", "tpot" or "e2e") to its bound, in the order given
 */
public record Slo(Map<String, Duration> bounds) {

  /** No objectives: every successful request meets them. */
  public static final Slo NONE = new Slo(Map.of());

  public Slo {
    bounds = Collections.unmodifiableMap(new LinkedHashMap<>(bounds));
  }

  /**
   * Parses {@code ttft=500ms,tpot=50ms,e2e=2s}.
   *
   * @throws IllegalArgumentException naming the part that is not {@code METRIC=DURATION} with a known metric
   */
  public static Slo parse(String text) {
    Map<String, Duration> bounds = new LinkedHashMap<>();
    for (String part : text.split(",")) {
      int eq = part.indexOf('=');
      String metric = eq < 0 ? "" : part.substring(0, eq).trim();
      if (!metric.equals("ttft") && !metric.equals("tpot") && !metric.equals("e2e")) {
        throw new IllegalArgumentException("--slo takes METRIC=DURATION pairs with METRIC ttft, tpot or e2e, e.g. "
            + "ttft=500ms,tpot=50ms; got '%s'".formatted(part));
      }
      bounds.put(metric, Durations.parse("--slo " + metric, part.substring(eq + 1)));
    }
    return new Slo(bounds);
  }

  public boolean isEmpty() {
    return bounds.isEmpty();
  }

  /** Whether {@code r} succeeded within every bound. */
  public boolean isMetBy(RequestResult r) {
    if (!r.ok()) {
      return false;
    }
    for (Map.Entry<String, Duration> bound : bounds.entrySet()) {
      long value = switch (bound.getKey()) {
        case "ttft" -> r.ttftNanos();
        case "tpot" -> r.tpotNanos();
        default -> r.e2eNanos();
      };
      if (value > bound.getValue().toNanos()) {
        return false;
      }
    }
    return true;
  }

  /** {@code ttft=500ms,tpot=50ms}. */
  @Override
  public String toString() {
    StringBuilder s = new StringBuilder();
    bounds.forEach((metric, bound) -> s.append(s.isEmpty() ? "" : ",").append(metric).append('=')
        .append(LoadReport.number(bound.toNanos() / 1e6)).append("ms"));
    return s.toString();
  }
}
