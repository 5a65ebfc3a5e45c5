package dev.owlery.engine.onednn;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * The calling thread and {@code size - 1} helpers sharing out the parts of one piece of work (the
 * heads of an attention call, the chunks of a rounding pass); each part runs once, on whichever
 * thread claims it first, and {@link #run} returns when all have run.
 */
final class ThreadTeam implements AutoCloseable {

  private final int size;
  private final ExecutorService helpers;

  ThreadTeam(int size) {
    this.size = size;
    this.helpers = size == 1 ? null : Executors.newFixedThreadPool(size - 1,
        Thread.ofPlatform().name("owlery-onednn-", 0).daemon().factory());
  }

  /** Threads in the team, the caller's included. */
  int size() {
    return size;
  }

  /**
   * Runs {@code part.accept(i)} for every {@code i < parts}, shared out over the team; the first
   * failure is rethrown once every thread has stopped.
   */
  void run(int parts, IntConsumer part) {
    AtomicInteger next = new AtomicInteger();
    Runnable share = () -> {
      for (int i = next.getAndIncrement(); i < parts; i = next.getAndIncrement()) {
        part.accept(i);
      }
    };
    int helping = Math.min(size, parts) - 1;
    List<Future<?>> shares = new ArrayList<>(Math.max(0, helping));
    for (int i = 0; i < helping; i++) {
      shares.add(helpers.submit(share));
    }
    RuntimeException failure = null;
    try {
      share.run();
    } catch (RuntimeException e) {
      failure = e;
    }
    for (Future<?> f : shares) {
      try {
        f.get();
      } catch (ExecutionException e) {
        if (failure == null) {
          failure = e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while the team's threads ran", e);
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public void close() {
    if (helpers != null) {
      helpers.shutdownNow();
    }
  }
}
