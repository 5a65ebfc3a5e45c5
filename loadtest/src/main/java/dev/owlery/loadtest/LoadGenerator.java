package dev.owlery.loadtest;

import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;
import org.HdrHistogram.Histogram;

/**
 * Sends one Generate request over and over through the client SDK and measures each: a level runs
 * {@code concurrency} client threads, each starting its next request as soon as its last one ended,
 * until the level's requests are all done. Latencies are recorded in nanoseconds with three
 * significant digits. One level at a time; the client is shared by the threads.
 */
public final class LoadGenerator {

  /** HdrHistogram precision: values within 0.1% (3 significant decimal digits). */
  private static final int SIGNIFICANT_DIGITS = 3;

  private final OwleryClient client;
  private final GenerateRequest request;
  private final LongSupplier nanoClock;

  /**
   * @param nanoClock a monotonic clock in nanoseconds ({@code System::nanoTime})
   */
  public LoadGenerator(OwleryClient client, GenerateRequest request, LongSupplier nanoClock) {
    this.client = client;
    this.request = request;
    this.nanoClock = nanoClock;
  }

  /**
   * Sends {@code numRequests} requests one after another and discards their timings (JIT, caches,
   * connections warm).
   *
   * @throws OwleryException from the first request that fails: a cluster that cannot answer one
   *     request is not worth measuring
   */
  public void warmUp(int numRequests) {
    for (int i = 0; i < numRequests; i++) {
      client.generate(request);
    }
  }

  /** Runs one level: {@code numRequests} requests over {@code concurrency} client threads. */
  public LevelResult runLevel(int concurrency, int numRequests) {
    if (concurrency < 1 || numRequests < 1) {
      throw new IllegalArgumentException("a level needs concurrency >= 1 and requests >= 1. Given: concurrency %d, "
          + "requests %d".formatted(concurrency, numRequests));
    }
    RequestResult[] results = new RequestResult[numRequests];
    AtomicInteger next = new AtomicInteger();
    List<Future<Timings>> workers = new ArrayList<>(concurrency);
    long start = nanoClock.getAsLong();
    try (ExecutorService threads = Executors.newThreadPerTaskExecutor(
        Thread.ofPlatform().name("owlery-loadtest-", 0).daemon().factory())) {
      for (int w = 0; w < concurrency; w++) {
        workers.add(threads.submit(() -> work(next, results)));
      }
    }
    long wallNanos = nanoClock.getAsLong() - start;
    Timings level = new Timings();
    for (Future<Timings> worker : workers) {
      level.add(join(worker));
    }
    return new LevelResult(concurrency, Arrays.asList(results), wallNanos, Latency.of(level.ttft),
        Latency.of(level.itl), Latency.of(level.e2e));
  }

  /** One client thread: takes request slots until none is left. */
  private Timings work(AtomicInteger next, RequestResult[] results) {
    Timings timings = new Timings();
    for (int slot = next.getAndIncrement(); slot < results.length; slot = next.getAndIncrement()) {
      results[slot] = measure(timings);
    }
    return timings;
  }

  /** Sends the request once; successful requests add their latencies to {@code timings}. */
  private RequestResult measure(Timings timings) {
    timings.requestItl.reset();
    int numTokens = 0;
    long start = nanoClock.getAsLong();
    long first = -1;
    long last = -1;
    boolean finished = false;
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
                timings.requestItl.recordValue(now - last);
              }
              last = now;
              numTokens += count;
            }
          }
          case FINISH -> finished = true;
          case EVENT_NOT_SET -> { }
        }
      }
    } catch (OwleryException e) {
      return new RequestResult(numTokens, first < 0 ? -1 : first - start, nanoClock.getAsLong() - start, e.code(),
          e.description() == null ? "" : e.description());
    }
    long e2e = nanoClock.getAsLong() - start;
    long ttft = first < 0 ? -1 : first - start;
    if (!finished) {
      // The SDK's own contract (a stream ends with one finish message) was broken: an Owlery bug.
      return new RequestResult(numTokens, ttft, e2e, Status.Code.INTERNAL,
          "the server ended the stream without a finish message");
    }
    if (ttft >= 0) {
      timings.ttft.recordValue(ttft);
    }
    timings.e2e.recordValue(e2e);
    timings.itl.add(timings.requestItl);
    return new RequestResult(numTokens, ttft, e2e, Status.Code.OK, "");
  }

  private static Timings join(Future<Timings> worker) {
    try {
      return worker.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for the load test's client threads", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException runtime) {
        throw runtime;
      }
      throw new IllegalStateException("a load test client thread failed: " + e.getCause(), e.getCause());
    }
  }

  /** One thread's latency histograms (nanoseconds); {@code requestItl} holds the request in flight. */
  private static final class Timings {
    final Histogram ttft = new Histogram(SIGNIFICANT_DIGITS);
    final Histogram itl = new Histogram(SIGNIFICANT_DIGITS);
    final Histogram e2e = new Histogram(SIGNIFICANT_DIGITS);
    final Histogram requestItl = new Histogram(SIGNIFICANT_DIGITS);

    void add(Timings other) {
      ttft.add(other.ttft);
      itl.add(other.itl);
      e2e.add(other.e2e);
    }
  }
}
