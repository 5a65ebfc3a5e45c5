package dev.owlery.loadtest;

import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * The cluster's state at one scrape of its {@code /metrics}, all answering targets together. The
 * scheduler's and image cache's figures (waiting, running, preemptions, sequences per step, cache
 * hits and misses, the coordinator's share of a step) are the coordinator's:
 * the targets publishing {@value #WAITING}. Its KV gauges cover every shard group; when no
 * coordinator answered, KV blocks are summed over the targets that publish them (shard ranks, each
 * counting its group's blocks once more, so only the usage fraction compares). A figure no target
 * published is NaN.
 *
 * @param atNanos when it was taken, from the level's start (the scrape before a level is at or below 0)
 * @param preemptions the counter's total since the coordinator started
 * @param stepSequencesSum sequences in all steps since the coordinator started
 * @param stepSequencesCount steps since the coordinator started
 * @param imageCacheHits images the coordinator found in its image-embedding cache since it started
 * @param imageCacheMisses images it sent to a vision worker since it started
 * @param coordinatorShareSum the coordinator's shares of its steps, added up, since it started
 *     (its own work on a step over that work plus the slowest rank's RunStep)
 * @param coordinatorShareCount the steps whose share it recorded
 * @param numAnswered targets that answered this scrape
 */
public record ServerSample(long atNanos, double kvBlocksUsed, double kvBlocksFree, double waiting, double running,
    double preemptions, double stepSequencesSum, double stepSequencesCount, double imageCacheHits,
    double imageCacheMisses, double coordinatorShareSum, double coordinatorShareCount, int numAnswered) {

  static final String KV_BLOCKS_USED = "owlery_kv_blocks_used";
  static final String KV_BLOCKS_FREE = "owlery_kv_blocks_free";
  static final String WAITING = "owlery_scheduler_waiting";
  static final String RUNNING = "owlery_scheduler_running";
  static final String PREEMPTIONS = "owlery_scheduler_preemptions_total";
  static final String STEP_SEQUENCES_SUM = "owlery_step_sequences_sum";
  static final String STEP_SEQUENCES_COUNT = "owlery_step_sequences_count";
  static final String IMAGE_CACHE_HITS = "owlery_image_cache_hits_total";
  static final String IMAGE_CACHE_MISSES = "owlery_image_cache_misses_total";
  static final String COORDINATOR_SHARE_SUM = "owlery_step_coordinator_share_sum";
  static final String COORDINATOR_SHARE_COUNT = "owlery_step_coordinator_share_count";

  /** One target's answer: its samples. */
  record Scrape(String url, List<PrometheusText.Sample> samples) {
    Scrape {
      samples = List.copyOf(samples);
    }

    boolean publishes(String name) {
      return samples.stream().anyMatch(s -> s.name().equals(name));
    }

    /** The sum over every series named {@code name} (any labels); NaN when there is none. */
    double sum(String name) {
      return samples.stream().filter(s -> s.name().equals(name)).mapToDouble(PrometheusText.Sample::value)
          .reduce(Double::sum).orElse(Double.NaN);
    }
  }

  /** The sample of the targets that answered at {@code atNanos}. */
  static ServerSample of(long atNanos, List<Scrape> answered) {
    List<Scrape> coordinators = answered.stream().filter(s -> s.publishes(WAITING)).toList();
    List<Scrape> kv = coordinators.isEmpty() ? answered : coordinators;
    return new ServerSample(atNanos, sum(kv, s -> s.sum(KV_BLOCKS_USED)), sum(kv, s -> s.sum(KV_BLOCKS_FREE)),
        sum(coordinators, s -> s.sum(WAITING)), sum(coordinators, s -> s.sum(RUNNING)),
        sum(coordinators, s -> s.sum(PREEMPTIONS)), sum(coordinators, s -> s.sum(STEP_SEQUENCES_SUM)),
        sum(coordinators, s -> s.sum(STEP_SEQUENCES_COUNT)), sum(coordinators, s -> s.sum(IMAGE_CACHE_HITS)),
        sum(coordinators, s -> s.sum(IMAGE_CACHE_MISSES)), sum(coordinators, s -> s.sum(COORDINATOR_SHARE_SUM)),
        sum(coordinators, s -> s.sum(COORDINATOR_SHARE_COUNT)), answered.size());
  }

  /** The same sample, taken at {@code nanos} on another time line. */
  ServerSample at(long nanos) {
    return new ServerSample(nanos, kvBlocksUsed, kvBlocksFree, waiting, running, preemptions, stepSequencesSum,
        stepSequencesCount, imageCacheHits, imageCacheMisses, coordinatorShareSum, coordinatorShareCount, numAnswered);
  }

  /** The sum of the targets' figures that are not NaN; NaN when every one is. */
  private static double sum(List<Scrape> scrapes, ToDoubleFunction<Scrape> figure) {
    return scrapes.stream().mapToDouble(figure).filter(v -> !Double.isNaN(v)).reduce(Double::sum).orElse(Double.NaN);
  }

  /** KV blocks used over used and free (vLLM's {@code kv_cache_usage_perc} / 100); NaN when unknown. */
  public double kvUsage() {
    double total = kvBlocksUsed + kvBlocksFree;
    return total > 0 ? kvBlocksUsed / total : Double.NaN;
  }
}
