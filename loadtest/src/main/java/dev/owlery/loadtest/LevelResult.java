package dev.owlery.loadtest;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What one concurrency level measured. Latencies cover the successful requests; generated tokens
 * count every token the client received, failed requests included.
 *
 * @param requests every request of the level, in the order they were started
 * @param wallNanos from the level's first request sent to its last one ended
 * @param itl the gaps between consecutive deltas holding tokens, within a request
 */
public record LevelResult(int concurrency, List<RequestResult> requests, long wallNanos, Latency ttft, Latency itl,
    Latency e2e) {

  public LevelResult {
    requests = List.copyOf(requests);
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

  public double wallSeconds() {
    return wallNanos / 1e9;
  }

  /** Generated tokens per wall-clock second of the level; 0 for a level that took no time. */
  public double tokensPerSecond() {
    return wallNanos > 0 ? generatedTokens() / wallSeconds() : 0;
  }
}
