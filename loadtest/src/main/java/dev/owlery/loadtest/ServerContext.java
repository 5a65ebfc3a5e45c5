package dev.owlery.loadtest;

import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * What the cluster's {@code /metrics} said during one level: a sample before it, one every second
 * during it, one after it (see {@link ServerSample} for how targets are combined).
 *
 * @param targets the {@code /metrics} URLs scraped
 * @param samples in time order
 * @param numFailedScrapes scrapes of one target that failed (no answer in time, not 200, not Prometheus text)
 * @param firstFailure the first failure, "URL: why"; empty when none
 */
public record ServerContext(List<String> targets, List<ServerSample> samples, int numFailedScrapes,
    String firstFailure) {

  /** No server-side context: nothing was scraped. */
  public static final ServerContext NONE = new ServerContext(List.of(), List.of(), 0, "");

  public ServerContext {
    targets = List.copyOf(targets);
    samples = List.copyOf(samples);
  }

  public boolean isEmpty() {
    return targets.isEmpty();
  }

  public double kvUsageMean() {
    return mean(ServerSample::kvUsage);
  }

  public double kvUsageMax() {
    return max(ServerSample::kvUsage);
  }

  public double waitingMean() {
    return mean(ServerSample::waiting);
  }

  public double waitingMax() {
    return max(ServerSample::waiting);
  }

  public double runningMean() {
    return mean(ServerSample::running);
  }

  public double runningMax() {
    return max(ServerSample::running);
  }

  /** Sequences preempted from the first sample to the last; NaN when no coordinator answered. */
  public double preemptions() {
    return increase(ServerSample::preemptions);
  }

  /** Images the coordinator found in its image-embedding cache from the first sample to the last; NaN when unknown. */
  public double imageCacheHits() {
    return increase(ServerSample::imageCacheHits);
  }

  /** Images the coordinator sent to a vision worker from the first sample to the last; NaN when unknown. */
  public double imageCacheMisses() {
    return increase(ServerSample::imageCacheMisses);
  }

  /** Sequences per step over the steps run from the first sample to the last; NaN when none ran or none was seen. */
  public double meanBatchSize() {
    double steps = increase(ServerSample::stepSequencesCount);
    return steps > 0 ? increase(ServerSample::stepSequencesSum) / steps : Double.NaN;
  }

  /**
   * The coordinator's mean share of a step (its own work over that plus the slowest rank's
   * RunStep) over the steps run from the first sample to the last; NaN when none ran or none was seen.
   */
  public double coordinatorShareMean() {
    double steps = increase(ServerSample::coordinatorShareCount);
    return steps > 0 ? increase(ServerSample::coordinatorShareSum) / steps : Double.NaN;
  }

  /**
   * How much a counter grew over the samples, as Prometheus' {@code increase} reads it: a value
   * below the one before is a restart from 0, so the new value is all growth. NaN when fewer
   * than two samples have the counter.
   */
  double increase(ToDoubleFunction<ServerSample> counter) {
    double growth = 0;
    double last = Double.NaN;
    int seen = 0;
    for (ServerSample sample : samples) {
      double value = counter.applyAsDouble(sample);
      if (Double.isNaN(value)) {
        continue;
      }
      if (seen++ > 0) {
        growth += value >= last ? value - last : value;
      }
      last = value;
    }
    return seen >= 2 ? growth : Double.NaN;
  }

  private double mean(ToDoubleFunction<ServerSample> figure) {
    return samples.stream().mapToDouble(figure).filter(v -> !Double.isNaN(v)).average().orElse(Double.NaN);
  }

  private double max(ToDoubleFunction<ServerSample> figure) {
    return samples.stream().mapToDouble(figure).filter(v -> !Double.isNaN(v)).max().orElse(Double.NaN);
  }
}
