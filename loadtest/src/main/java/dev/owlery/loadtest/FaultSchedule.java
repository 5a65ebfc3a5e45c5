package dev.owlery.loadtest;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Injects a plan's faults at their times from the first level's start, on a thread of its own, and
 * records when each happened and what the injector did. Thread-safe.
 */
final class FaultSchedule {

  /** Longest a fault may still be injected after the run: a coordinator restart waits for the cluster. */
  static final Duration INJECTION_TIMEOUT = Duration.ofMinutes(5);

  private final ChaosPlan plan;
  private final LongSupplier nanoClock;
  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1,
      Thread.ofPlatform().name("owlery-loadtest-chaos").daemon().factory());
  private final List<ChaosReport.Injected> done = new ArrayList<>();
  private long origin;

  FaultSchedule(ChaosPlan plan, LongSupplier nanoClock) {
    this.plan = plan;
    this.nanoClock = nanoClock;
    // stop() drops the faults whose time has not come, and lets the one being injected finish.
    timer.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
  }

  /** Schedules every fault, timed from {@code originNanos} (the first level's start). */
  synchronized void start(long originNanos) {
    origin = originNanos;
    for (Fault fault : plan.faults()) {
      long delay = originNanos + fault.at().toNanos() - nanoClock.getAsLong();
      timer.schedule(() -> inject(fault), Math.max(0, delay), TimeUnit.NANOSECONDS);
    }
  }

  private void inject(Fault fault) {
    long at = nanoClock.getAsLong();
    String outcome;
    boolean injected;
    try {
      outcome = plan.injector().apply(fault);
      injected = true;
    } catch (RuntimeException e) {
      outcome = "not injected: " + e.getMessage();
      injected = false;
    }
    synchronized (this) {
      done.add(new ChaosReport.Injected(fault, injected ? at - origin : -1, outcome, injected));
    }
  }

  /**
   * Cancels the faults whose time has not come (the run ended first) and waits for one being
   * injected: up to {@link #INJECTION_TIMEOUT}, as a restart waits for the cluster to serve again.
   */
  void stop() {
    timer.shutdown();
    try {
      if (!timer.awaitTermination(INJECTION_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
        throw new IllegalStateException("a --chaos fault was still being injected %d s after the run ended"
            .formatted(INJECTION_TIMEOUT.toSeconds()));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while stopping the --chaos faults", e);
    }
  }

  /** Every planned fault in plan order: when it was injected, or why it was not. */
  synchronized ChaosReport report() {
    List<ChaosReport.Injected> all = new ArrayList<>();
    for (Fault fault : plan.faults()) {
      all.add(done.stream().filter(d -> d.fault() == fault).findFirst().orElse(
          new ChaosReport.Injected(fault, -1, "not injected: the run ended before its time", false)));
    }
    return new ChaosReport(all, plan.stallThreshold().toNanos());
  }
}
