package dev.owlery.loadtest;

import java.util.List;

/**
 * The faults a run injected and what the requests around them saw. Only the requests still
 * running at the first fault or started after it count: those failed, those that stalled (waited
 * longer than {@code stallThresholdNanos} for their first token, a next one, or their end after
 * the last), and the worst such wait.
 */
public record ChaosReport(List<Injected> faults, long stallThresholdNanos) {

  /** No fault was planned. */
  public static final ChaosReport NONE = new ChaosReport(List.of(), 0);

  /**
   * One fault: {@code atNanos} from the first level's start ({@code -1} when the run ended before
   * its time), what the injector did, or why it could not.
   */
  public record Injected(Fault fault, long atNanos, String outcome, boolean injected) {}

  public ChaosReport {
    faults = List.copyOf(faults);
  }

  public boolean isEmpty() {
    return faults.isEmpty();
  }

  /** When the first injected fault happened, from the first level's start; {@code Long.MAX_VALUE} when none was. */
  public long firstFaultNanos() {
    return faults.stream().filter(Injected::injected).mapToLong(Injected::atNanos).min().orElse(Long.MAX_VALUE);
  }

  public int numFailed(List<LevelResult> levels) {
    return (int) affected(levels).filter(a -> !a.request().ok()).count();
  }

  public int numStalled(List<LevelResult> levels) {
    return (int) affected(levels).filter(a -> longestWait(a.request()) > stallThresholdNanos).count();
  }

  /** The longest wait of an affected request; 0 when none is. */
  public long worstStallNanos(List<LevelResult> levels) {
    return affected(levels).mapToLong(a -> longestWait(a.request())).max().orElse(0);
  }

  private record Affected(LevelResult level, RequestResult request) {}

  private java.util.stream.Stream<Affected> affected(List<LevelResult> levels) {
    long first = firstFaultNanos();
    return levels.stream().flatMap(level -> level.requests().stream().map(r -> new Affected(level, r)))
        .filter(a -> a.level().startNanos() + a.request().sentNanos() + a.request().e2eNanos() >= first);
  }

  /** The longest time {@code r} went without news: to its first token, between tokens, from its last token to its end. */
  static long longestWait(RequestResult r) {
    if (r.ttftNanos() < 0) {
      return r.e2eNanos();
    }
    long longest = r.ttftNanos();
    long last = r.ttftNanos();
    for (long gap : r.itlNanos()) {
      longest = Math.max(longest, gap);
      last += gap;
    }
    return Math.max(longest, r.e2eNanos() - last);
  }
}
