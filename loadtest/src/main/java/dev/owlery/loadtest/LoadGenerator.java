package dev.owlery.loadtest;

import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.Usage;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Sends a workload's requests through the client SDK and measures each, one level at a time. A
 * closed-loop level runs {@code clients} threads, each starting its next request as soon as its
 * last one ended; an open-loop level starts each request at its arrival time (from {@link
 * Arrivals}) on a thread of its own, however many are still running. A level ends when its request
 * count is reached or its duration has passed (no request starts after that; those running finish).
 */
public final class LoadGenerator {

  /** When a level stops starting requests: after {@code maxRequests}, or {@code duration} after its start. */
  public record Bound(long maxRequests, Duration duration) {
    public static final Duration UNBOUNDED = Duration.ofNanos(Long.MAX_VALUE);
  }

  private final OwleryClient client;
  private final Workload workload;
  private final long seed;
  private final LongSupplier nanoClock;

  /**
   * @param seed seeds the arrival times of open-loop levels
   * @param nanoClock a monotonic clock in nanoseconds ({@code System::nanoTime})
   */
  public LoadGenerator(OwleryClient client, Workload workload, long seed, LongSupplier nanoClock) {
    this.client = client;
    this.workload = workload;
    this.seed = seed;
    this.nanoClock = nanoClock;
  }

  /**
   * Sends the workload's first {@code numRequests} requests one after another and discards their
   * timings (JIT, caches, connections warm).
   *
   * @throws OwleryException from the first request that fails: a cluster that cannot answer one
   *     request is not worth measuring
   */
  public void warmUp(int numRequests) {
    for (int i = 0; i < numRequests; i++) {
      client.generate(workload.request(0, i));
    }
  }

  /**
   * Runs one level; {@code onDone} hears of each request as it ends (from the requests' threads).
   *
   * @param pass the level's pass through the workload: 1 for the first level, 2 for the next (the
   *     warm-up is 0)
   * @param start the level's start on this generator's clock, taken by the caller: the requests' send
   *     times count from it, so that the caller places them on its own timeline (a fault's time)
   *     without the moments between its reading and this call
   * @return the requests in the workload's order
   */
  public LevelResult runLevel(int pass, Load load, Bound bound, long start, Consumer<RequestResult> onDone) {
    ConcurrentLinkedQueue<RequestResult> results = new ConcurrentLinkedQueue<>();
    Consumer<RequestResult> record = r -> {
      results.add(r);
      onDone.accept(r);
    };
    long durationNanos = bound.duration().toNanos();
    switch (load) {
      case Load.Concurrency c -> closedLoop(pass, c.clients(), bound.maxRequests(), start, durationNanos, record);
      case Load.Rate r -> openLoop(pass, r, bound.maxRequests(), start, durationNanos, record);
    }
    long wallNanos = nanoClock.getAsLong() - start;
    List<RequestResult> ordered = new ArrayList<>(results);
    ordered.sort(Comparator.comparingLong(RequestResult::index));
    return LevelResult.of(load, ordered, wallNanos);
  }

  private void closedLoop(int pass, int clients, long maxRequests, long start, long durationNanos,
      Consumer<RequestResult> record) {
    AtomicLong next = new AtomicLong();
    try (ExecutorService threads = Executors.newThreadPerTaskExecutor(
        Thread.ofPlatform().name("owlery-loadtest-", 0).daemon().factory())) {
      for (int w = 0; w < clients; w++) {
        threads.submit(() -> {
          for (long i = next.getAndIncrement(); i < maxRequests && nanoClock.getAsLong() - start < durationNanos;
              i = next.getAndIncrement()) {
            record.accept(measure(pass, i, start));
          }
        });
      }
    }
  }

  private void openLoop(int pass, Load.Rate rate, long maxRequests, long start, long durationNanos,
      Consumer<RequestResult> record) {
    Arrivals arrivals = new Arrivals(rate, seed);
    try (ExecutorService threads = Executors.newThreadPerTaskExecutor(
        Thread.ofVirtual().name("owlery-loadtest-", 0).factory())) {
      for (long i = 0; i < maxRequests; i++) {
        long at = arrivals.next();
        if (at >= durationNanos) {
          break;
        }
        for (long wait = start + at - nanoClock.getAsLong(); wait > 0; wait = start + at - nanoClock.getAsLong()) {
          LockSupport.parkNanos(wait);
        }
        long index = i;
        threads.submit(() -> record.accept(measure(pass, index, start)));
      }
    }
  }

  /** Sends request {@code index} of the workload's pass {@code pass} once and measures it. */
  private RequestResult measure(int pass, long index, long levelStart) {
    GenerateRequest request = workload.request(pass, index);
    List<Long> itl = new ArrayList<>();
    int numTokens = 0;
    long start = nanoClock.getAsLong();
    long first = -1;
    long last = -1;
    Usage usage = null;
    try (GenerationStream stream = client.generateStream(request)) {
      while (stream.hasNext()) {
        GenerateResponse response = stream.next();
        switch (response.getEventCase()) {
          case DELTA -> {
            int count = response.getDelta().getTokenIdsCount();
            if (count > 0) {
              long now = nanoClock.getAsLong();
              if (first < 0) {
                first = now;
              } else {
                itl.add(now - last);
              }
              last = now;
              numTokens += count;
            }
          }
          case FINISH -> usage = response.getFinish().getUsage();
          case EVENT_NOT_SET -> { }
        }
      }
    } catch (OwleryException e) {
      return new RequestResult(index, start - levelStart, 0, 0, numTokens, first < 0 ? -1 : first - start,
          toArray(itl), nanoClock.getAsLong() - start, e.code(), e.description() == null ? "" : e.description());
    }
    long e2e = nanoClock.getAsLong() - start;
    long ttft = first < 0 ? -1 : first - start;
    if (usage == null) {
      // The SDK's own contract (a stream ends with one finish message) was broken: an Owlery bug.
      return new RequestResult(index, start - levelStart, 0, 0, numTokens, ttft, toArray(itl), e2e,
          Status.Code.INTERNAL, "the server ended the stream without a finish message");
    }
    return new RequestResult(index, start - levelStart, usage.getNumPromptTokens(), usage.getNumImageTokens(),
        numTokens, ttft, toArray(itl), e2e, Status.Code.OK, "");
  }

  private static long[] toArray(List<Long> values) {
    return values.stream().mapToLong(Long::longValue).toArray();
  }
}
