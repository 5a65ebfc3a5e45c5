package dev.owlery.loadtest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A load test's levels, as a table for people (one line per level) or JSON for machines. The
 * ratio of a level is its generated tokens/s over the first level's.
 *
 * @param target the coordinator the requests went to, HOST:PORT
 * @param maxNewTokens the requests' max_new_tokens
 */
public record LoadReport(String target, int maxNewTokens, List<LevelResult> levels) {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ROW = "%11s %8s %6s %9s %8s %9s %6s %10s %10s %9s %9s %10s %10s%n";

  public LoadReport {
    levels = List.copyOf(levels);
  }

  /** {@code level}'s tokens/s over the first level's; 0 when the first level generated nothing. */
  public double ratio(LevelResult level) {
    double base = levels.getFirst().tokensPerSecond();
    return base > 0 ? level.tokensPerSecond() / base : 0;
  }

  /** A header and one line per level; latencies in milliseconds. */
  public String table() {
    StringBuilder out = new StringBuilder();
    out.append(ROW.formatted("concurrency", "requests", "errors", "tokens", "wall_s", "tokens/s", "ratio",
        "ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "e2e_p50", "e2e_p99"));
    for (LevelResult level : levels) {
      out.append(String.format(Locale.ROOT, ROW, level.concurrency(), level.numRequests(), level.numErrors(),
          level.generatedTokens(), fixed(level.wallSeconds(), 2), fixed(level.tokensPerSecond(), 1),
          fixed(ratio(level), 2), fixed(level.ttft().p50Ms(), 1), fixed(level.ttft().p99Ms(), 1),
          fixed(level.itl().p50Ms(), 1), fixed(level.itl().p99Ms(), 1), fixed(level.e2e().p50Ms(), 1),
          fixed(level.e2e().p99Ms(), 1)));
    }
    out.append("latencies in ms (successful requests); ratio = tokens/s over the first level's\n");
    return out.toString();
  }

  /**
   * {@code {"target", "max_new_tokens", "levels": [{"concurrency", "num_requests", "num_errors",
   * "errors": {CODE: n}, "generated_tokens", "wall_seconds", "tokens_per_second", "ratio",
   * "ttft_ms"|"itl_ms"|"e2e_ms": {"count", "p50", "p99"}, "requests": [{"tokens", "ttft_ms",
   * "e2e_ms", "status", "error"}]}]}}; a request without a token has {@code ttft_ms} null, a
   * successful one no {@code error}.
   */
  public String json() {
    ObjectNode root = JSON.createObjectNode();
    root.put("target", target);
    root.put("max_new_tokens", maxNewTokens);
    ArrayNode list = root.putArray("levels");
    for (LevelResult level : levels) {
      ObjectNode node = list.addObject();
      node.put("concurrency", level.concurrency());
      node.put("num_requests", level.numRequests());
      node.put("num_errors", level.numErrors());
      ObjectNode errors = node.putObject("errors");
      for (Map.Entry<String, Integer> e : level.errorsByCode().entrySet()) {
        errors.put(e.getKey(), e.getValue());
      }
      node.put("generated_tokens", level.generatedTokens());
      node.put("wall_seconds", level.wallSeconds());
      node.put("tokens_per_second", level.tokensPerSecond());
      node.put("ratio", ratio(level));
      putLatency(node, "ttft_ms", level.ttft());
      putLatency(node, "itl_ms", level.itl());
      putLatency(node, "e2e_ms", level.e2e());
      ArrayNode requests = node.putArray("requests");
      for (RequestResult r : level.requests()) {
        ObjectNode request = requests.addObject();
        request.put("tokens", r.numTokens());
        if (r.ttftNanos() >= 0) {
          request.put("ttft_ms", r.ttftNanos() / 1e6);
        } else {
          request.putNull("ttft_ms");
        }
        request.put("e2e_ms", r.e2eNanos() / 1e6);
        request.put("status", r.code().name());
        if (!r.ok()) {
          request.put("error", r.error());
        }
      }
    }
    return root.toPrettyString();
  }

  private static void putLatency(ObjectNode parent, String name, Latency latency) {
    parent.putObject(name).put("count", latency.count()).put("p50", latency.p50Ms()).put("p99", latency.p99Ms());
  }

  private static String fixed(double value, int decimals) {
    return String.format(Locale.ROOT, "%." + decimals + "f", value);
  }
}
