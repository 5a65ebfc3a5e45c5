package dev.owlery.coordinator.scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The threads that pick a step's tokens in parallel, one per core, shared by the group loops: a
 * sampler that needs the whole 32,000-logit row (penalties, top-p without top-k) takes most of a
 * millisecond per sequence, so 256 of them one after another would make the coordinator the step's
 * bottleneck. Each sequence is picked by one thread ({@link SequenceState#pick}); streaming stays
 * on the loop's thread, in order. Steps with few whole rows are picked on the caller's thread.
 */
final class SamplingPool implements AutoCloseable {

  private static final Logger LOG = Logger.getLogger(SamplingPool.class.getName());
  /** Fewer whole-row sequences than this per thread are not worth a hand-off. */
  private static final int MIN_SEQUENCES_PER_TASK = 16;

  private final int numThreads;
  private final ExecutorService threads;

  SamplingPool(int numThreads) {
    if (numThreads < 1) {
      throw new IllegalArgumentException("numThreads must be >= 1. Given: " + numThreads);
    }
    this.numThreads = numThreads;
    this.threads = Executors.newFixedThreadPool(numThreads,
        Thread.ofPlatform().name("owlery-sampling-", 0).daemon().factory());
  }

  /** One thread per available processor. */
  static SamplingPool perCore() {
    return new SamplingPool(Runtime.getRuntime().availableProcessors());
  }

  /**
   * Picks every sequence's next token and returns once all are picked. A pick that throws leaves
   * its sequence unpicked, so that {@link SequenceState#sampleNext} picks it again on the loop's
   * thread and fails that sequence alone.
   */
  void pickAll(List<SequenceState> sequences) throws InterruptedException {
    // Picks from candidates take about a microsecond: only whole rows are worth the threads.
    long numWholeRows = sequences.stream().filter(s -> s.logits().numCandidates() == 0).count();
    int numTasks = (int) Math.min(numThreads, numWholeRows / MIN_SEQUENCES_PER_TASK);
    if (numTasks <= 1) {
      sequences.forEach(SamplingPool::pick);
      return;
    }
    List<Callable<Void>> tasks = new ArrayList<>(numTasks);
    for (int t = 0; t < numTasks; t++) {
      List<SequenceState> chunk = sequences.subList(t * sequences.size() / numTasks,
          (t + 1) * sequences.size() / numTasks);
      tasks.add(() -> {
        chunk.forEach(SamplingPool::pick);
        return null;
      });
    }
    threads.invokeAll(tasks);
  }

  private static void pick(SequenceState sequence) {
    try {
      sequence.pick();
    } catch (RuntimeException e) {
      LOG.log(Level.FINE, "picking sequence " + sequence.sequenceId() + " failed; it is picked again to fail alone", e);
    }
  }

  /** Stops the threads, waiting up to 5 s for picks in flight. */
  @Override
  public void close() {
    threads.shutdownNow();
    try {
      threads.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
