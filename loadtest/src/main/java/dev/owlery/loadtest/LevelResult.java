package dev.owlery.loadtest;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.ToLongFunction;

/**
 * What one level measured. Latencies cover the successful requests (TPOT those with two tokens or
 * more); generated tokens count every token the client received, failed requests included.
 *
 * @param requests every request of the level, in the workload's order
 * @param wallNanos from the level's start to its last request's end
 * @param itl the gaps between consecutive deltas holding tokens, within a request
 * @param startNanos when the level started, from the first level's start
 * @param server what the cluster's /metrics said during the level; {@link ServerContext#NONE} when not scraped
 */
public record LevelResult(Load load, List<RequestResult> requests, long wallNanos, Latency ttft, Latency tpot,
    Latency itl, Latency e2e, long startNanos, ServerContext server) {

  public LevelResult {
    requests = List.copyOf(requests);
  }

  /** The result of a level's requests, with their latencies summarized (started at 0, no server context). */
  public static LevelResult of(Load load, List<RequestResult> requests, long wallNanos) {
    List<RequestResult> ok = requests.stream().filter(RequestResult::ok).toList();
    return new LevelResult(load, requests, wallNanos,
        Latency.of(collect(ok.stream().filter(r -> r.ttftNanos() >= 0).toList(), RequestResult::ttftNanos)),
        Latency.of(collect(ok.stream().filter(r -> r.numTokens() > 1).toList(), RequestResult::tpotNanos)),
        Latency.of(ok.stream().flatMapToLong(r -> Arrays.stream(r.itlNanos())).toArray()),
        Latency.of(collect(ok, RequestResult::e2eNanos)), 0, ServerContext.NONE);
  }

  /** This level, started {@code startNanos} after the first level's start, with the server's context. */
  public LevelResult in(long startNanos, ServerContext server) {
    return new LevelResult(load, requests, wallNanos, ttft, tpot, itl, e2e, startNanos, server);
  }

  private static long[] collect(List<RequestResult> requests, ToLongFunction<RequestResult> metric) {
    return requests.stream().mapToLong(metric).toArray();
  }

  public int numRequests() {
    return requests.size();
  }

  public int numErrors() {
    return (int) requests.stream().filter(r -> !r.ok()).count();
  }

  /** Failed requests by status code name, sorted by name. */
  public Map<String, Integer> errorsByCode() {
    Map<String, Integer> errors = new TreeMap<>();
    for (RequestResult r : requests) {
      if (!r.ok()) {
        errors.merge(r.code().name(), 1, Integer::sum);
      }
    }
    return errors;
  }

  /** "CODE: description" of the first failed request, or empty when none failed. */
  public String firstError() {
    return requests.stream().filter(r -> !r.ok()).findFirst().map(r -> r.code() + ": " + r.error()).orElse("");
  }

  public long generatedTokens() {
    return requests.stream().mapToLong(RequestResult::numTokens).sum();
  }

  public long promptTokens() {
    return requests.stream().mapToLong(RequestResult::promptTokens).sum();
  }

  public double wallSeconds() {
    return wallNanos / 1e9;
  }

  /** Generated tokens per wall-clock second of the level (output token throughput); 0 for a level that took no time. */
  public double tokensPerSecond() {
    return wallNanos > 0 ? generatedTokens() / wallSeconds() : 0;
  }

  /** Successful requests per wall-clock second (vLLM's request throughput). */
  public double requestThroughput() {
    return wallNanos > 0 ? (numRequests() - numErrors()) / wallSeconds() : 0;
  }

  /**
   * The rate requests were actually sent at: the requests after the first over the time from the
   * first one sent to the last; 0 with fewer than two requests.
   */
  public double achievedRequestRate() {
    if (requests.size() < 2) {
      return 0;
    }
    long first = requests.stream().mapToLong(RequestResult::sentNanos).min().orElseThrow();
    long last = requests.stream().mapToLong(RequestResult::sentNanos).max().orElseThrow();
    return last > first ? (requests.size() - 1) / ((last - first) / 1e9) : 0;
  }

  /** Requests that met every objective of {@code slo}. */
  public int numMeeting(Slo slo) {
    return (int) requests.stream().filter(slo::isMetBy).count();
  }

  /** Requests meeting {@code slo} per wall-clock second (vLLM's request goodput). */
  public double goodput(Slo slo) {
    return wallNanos > 0 ? numMeeting(slo) / wallSeconds() : 0;
  }

  /** The fraction of all requests (failed ones included) that met {@code slo}; 0 for an empty level. */
  public double attainment(Slo slo) {
    return requests.isEmpty() ? 0 : (double) numMeeting(slo) / requests.size();
  }
}
