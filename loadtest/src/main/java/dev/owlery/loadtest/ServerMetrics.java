package dev.owlery.loadtest;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;

/**
 * Scrapes the cluster's {@code /metrics} endpoints around and during a level: once before it, every
 * {@link #INTERVAL} during it, once after it. The targets are scraped in parallel, each within
 * {@link #SCRAPE_TIMEOUT}; a target that fails is counted and left out of that sample, and the
 * level goes on (a node killed mid-run must not stop the measurement).
 */
public final class ServerMetrics implements AutoCloseable {

  static final Duration INTERVAL = Duration.ofSeconds(1);
  static final Duration SCRAPE_TIMEOUT = Duration.ofSeconds(2);

  private final List<String> urls;
  private final LongSupplier nanoClock;
  private final HttpClient http;

  /**
   * @param urls the {@code /metrics} URLs (http or https)
   * @throws IllegalArgumentException for a URL that is not http(s)
   */
  public ServerMetrics(List<String> urls, LongSupplier nanoClock) {
    checkUrls(urls);
    this.urls = List.copyOf(urls);
    this.nanoClock = nanoClock;
    this.http = HttpClient.newBuilder().connectTimeout(SCRAPE_TIMEOUT).build();
  }

  /** @throws IllegalArgumentException for a URL that is not http(s) */
  static void checkUrls(List<String> urls) {
    for (String url : urls) {
      URI uri;
      try {
        uri = URI.create(url);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--metrics-url must be an http(s) URL, got '%s'".formatted(url));
      }
      if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme()) || uri.getHost() == null) {
        throw new IllegalArgumentException("--metrics-url must be an http(s) URL, got '%s'".formatted(url));
      }
    }
  }

  public List<String> urls() {
    return urls;
  }

  /** Takes the sample before a level and starts sampling every {@link #INTERVAL}. */
  public Recording start() {
    return new Recording();
  }

  /** The samples of one level, taken on a thread of their own until {@link #stop}. */
  public final class Recording {
    /** Samples with their time on the nano clock, not yet from the level's start. */
    private final List<ServerSample> samples = new ArrayList<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
        Thread.ofPlatform().name("owlery-loadtest-metrics").daemon().factory());
    private int numFailed;
    private String firstFailure = "";

    private Recording() {
      if (urls.isEmpty()) {
        return;
      }
      sample();
      timer.scheduleAtFixedRate(this::sample, INTERVAL.toNanos(), INTERVAL.toNanos(), TimeUnit.NANOSECONDS);
    }

    /**
     * Stops sampling, takes the sample after the level and returns them all, timed from {@code
     * levelStartNanos}; {@link ServerContext#NONE} without targets.
     */
    public ServerContext stop(long levelStartNanos) {
      timer.shutdownNow();
      if (urls.isEmpty()) {
        return ServerContext.NONE;
      }
      try {
        if (!timer.awaitTermination(2 * SCRAPE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
          throw new IllegalStateException("a /metrics scrape did not end within " + 2 * SCRAPE_TIMEOUT.toSeconds()
              + " s of being stopped");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while stopping the /metrics scrapes", e);
      }
      sample();
      synchronized (this) {
        List<ServerSample> timed = samples.stream().map(s -> s.at(s.atNanos() - levelStartNanos)).toList();
        return new ServerContext(urls, timed, numFailed, firstFailure);
      }
    }

    private void sample() {
      long at = nanoClock.getAsLong();
      List<CompletableFuture<ServerSample.Scrape>> pending = urls.stream().map(ServerMetrics.this::scrape).toList();
      List<ServerSample.Scrape> answered = new ArrayList<>();
      List<String> failures = new ArrayList<>();
      for (int i = 0; i < pending.size(); i++) {
        try {
          answered.add(pending.get(i).get(SCRAPE_TIMEOUT.toMillis() + 500, TimeUnit.MILLISECONDS));
        } catch (ExecutionException e) {
          failures.add(urls.get(i) + ": " + why(e.getCause()));
        } catch (TimeoutException e) {
          pending.get(i).cancel(true);
          failures.add(urls.get(i) + ": no answer within " + SCRAPE_TIMEOUT.toSeconds() + " s");
        } catch (InterruptedException e) {
          // stop() interrupts a sample in flight: it is superseded by the one stop() takes.
          Thread.currentThread().interrupt();
          return;
        }
      }
      synchronized (this) {
        samples.add(ServerSample.of(at, answered));
        numFailed += failures.size();
        if (firstFailure.isEmpty() && !failures.isEmpty()) {
          firstFailure = failures.getFirst();
        }
      }
    }
  }

  private CompletableFuture<ServerSample.Scrape> scrape(String url) {
    HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(SCRAPE_TIMEOUT).GET().build();
    return http.sendAsync(request, HttpResponse.BodyHandlers.ofString()).thenApply(response -> {
      if (response.statusCode() != 200) {
        throw new IllegalStateException("answered HTTP " + response.statusCode());
      }
      return new ServerSample.Scrape(url, PrometheusText.parse(response.body()));
    });
  }

  /** The first message in {@code failure}'s cause chain (the JDK's ConnectException has none), else its type. */
  private static String why(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t.getMessage() != null) {
        return t.getMessage();
      }
    }
    return failure.getClass().getSimpleName() + " (no message)";
  }

  @Override
  public void close() {
    http.close();
  }
}
