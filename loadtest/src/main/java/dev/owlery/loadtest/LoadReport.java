package dev.owlery.loadtest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A load test's levels, as a table for people (one line per level) or JSON for machines. The
 * ratio of a level is its generated tokens/s over the first level's. With SLOs, a level meets them
 * when at least {@code sloAttainment} of its requests do.
 *
 * @param target the coordinator the requests went to, HOST:PORT
 * @param maxNewTokens the requests' max_new_tokens where the workload sets none of its own
 * @param slo the objectives; {@link Slo#NONE} for none
 * @param sloAttainment the fraction of a level's requests that must meet {@code slo}
 * @param chaos the faults injected; {@link ChaosReport#NONE} for none
 */
public record LoadReport(String target, int maxNewTokens, List<LevelResult> levels, Slo slo, double sloAttainment,
    ChaosReport chaos) {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ROW = "%11s %8s %6s %9s %8s %9s %6s %10s %10s %9s %9s %10s %10s";

  public LoadReport {
    levels = List.copyOf(levels);
  }

  /** {@code level}'s tokens/s over the first level's; 0 when the first level generated nothing. */
  public double ratio(LevelResult level) {
    double base = levels.getFirst().tokensPerSecond();
    return base > 0 ? level.tokensPerSecond() / base : 0;
  }

  /** Whether at least {@code sloAttainment} of the level's requests met the SLOs. */
  public boolean meetsSlo(LevelResult level) {
    return level.attainment(slo) >= sloAttainment;
  }

  /** A header and one line per level; latencies in milliseconds. */
  public String table() {
    boolean rates = levels.getFirst().load() instanceof Load.Rate;
    StringBuilder out = new StringBuilder();
    out.append(ROW.formatted(rates ? "rate" : "concurrency", "requests", "errors", "tokens", "wall_s", "tokens/s",
        "ratio", "ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "e2e_p50", "e2e_p99"));
    out.append(rates ? " %13s".formatted("achieved_rate") : "");
    out.append(slo.isEmpty() ? "" : " %8s %8s %8s".formatted("goodput", "slo_met", "meets"));
    out.append('\n');
    for (LevelResult level : levels) {
      String load = switch (level.load()) {
        case Load.Concurrency c -> String.valueOf(c.clients());
        case Load.Rate r -> number(r.perSecond());
      };
      out.append(String.format(Locale.ROOT, ROW, load, level.numRequests(), level.numErrors(),
          level.generatedTokens(), fixed(level.wallSeconds(), 2), fixed(level.tokensPerSecond(), 1),
          fixed(ratio(level), 2), fixed(level.ttft().p50Ms(), 1), fixed(level.ttft().p99Ms(), 1),
          fixed(level.itl().p50Ms(), 1), fixed(level.itl().p99Ms(), 1), fixed(level.e2e().p50Ms(), 1),
          fixed(level.e2e().p99Ms(), 1)));
      out.append(rates ? " %13s".formatted(fixed(level.achievedRequestRate(), 2)) : "");
      out.append(slo.isEmpty() ? "" : " %8s %7s%% %8s".formatted(fixed(level.goodput(slo), 2),
          fixed(100 * level.attainment(slo), 1), meetsSlo(level) ? "yes" : "no"));
      out.append('\n');
    }
    out.append("latencies in ms (successful requests); ratio = tokens/s over the first level's\n");
    for (LevelResult level : levels) {
      if (!level.server().isEmpty()) {
        out.append(serverLine(level)).append('\n');
      }
    }
    if (!chaos.isEmpty()) {
      out.append(chaosLine()).append('\n');
    }
    if (!slo.isEmpty()) {
      out.append("goodput = requests/s meeting %s; a level meets the SLOs when %s%% of its requests do\n"
          .formatted(slo, number(100 * sloAttainment)));
    }
    return out.toString();
  }

  /**
   * {@code {"target", "max_new_tokens", "slo"?, "chaos"?: {"faults": [{"fault", "kind", "injected",
   * "outcome", "at_s"}], "stall_threshold_ms", "requests_failed", "requests_stalled",
   * "worst_stall_ms"}, "levels": [{"concurrency" | "request_rate" and
   * "burstiness", "achieved_request_rate", "num_requests", "num_errors", "errors": {CODE: n},
   * "generated_tokens", "prompt_tokens", "wall_seconds", "tokens_per_second",
   * "request_throughput", "ratio", "goodput"?, "ttft_ms"|"tpot_ms"|"itl_ms"|"e2e_ms": {"count",
   * "mean", "p50", "p90", "p95", "p99", "max"}, "start_s", "server"?: {"targets", "failed_scrapes",
   * "first_failure"?, "kv_usage_mean", "kv_usage_max", "waiting_mean", "waiting_max", "running_mean",
   * "running_max", "preemptions", "mean_batch_size", "image_cache_hits", "image_cache_misses",
   * "samples": [{"at_s", "kv_blocks_used", "kv_blocks_free", "kv_usage", "waiting", "running",
   * "preemptions_total", "step_sequences_sum", "step_sequences_count", "image_cache_hits_total",
   * "image_cache_misses_total", "answered"}]}, "requests": [{"index", "sent_ms",
   * "prompt_tokens", "image_tokens", "tokens", "ttft_ms", "tpot_ms", "itl_ms": [...], "e2e_ms",
   * "status", "error"}]}]}}; a request without a token has {@code ttft_ms} null, a successful one
   * no {@code error}; a server figure no target published is null.
   */
  public String json() {
    ObjectNode root = JSON.createObjectNode();
    root.put("target", target);
    root.put("max_new_tokens", maxNewTokens);
    if (!slo.isEmpty()) {
      ObjectNode objectives = root.putObject("slo");
      slo.bounds().forEach((metric, bound) -> objectives.put(metric + "_ms", bound.toNanos() / 1e6));
      objectives.put("attainment", sloAttainment);
    }
    if (!chaos.isEmpty()) {
      ObjectNode node = root.putObject("chaos");
      ArrayNode faults = node.putArray("faults");
      for (ChaosReport.Injected f : chaos.faults()) {
        ObjectNode fault = faults.addObject().put("fault", f.fault().toString()).put("kind", f.fault().kind())
            .put("injected", f.injected()).put("outcome", f.outcome());
        if (f.injected()) {
          fault.put("at_s", f.atNanos() / 1e9);
        } else {
          fault.putNull("at_s");
        }
      }
      node.put("stall_threshold_ms", chaos.stallThresholdNanos() / 1e6);
      node.put("requests_failed", chaos.numFailed(levels));
      node.put("requests_stalled", chaos.numStalled(levels));
      node.put("worst_stall_ms", chaos.worstStallNanos(levels) / 1e6);
    }
    ArrayNode list = root.putArray("levels");
    for (int i = 0; i < levels.size(); i++) {
      LevelResult level = levels.get(i);
      ObjectNode node = list.addObject();
      switch (level.load()) {
        case Load.Concurrency c -> node.put("concurrency", c.clients());
        case Load.Rate r -> node.put("request_rate", r.perSecond()).put("burstiness", r.burstiness());
      }
      node.put("achieved_request_rate", level.achievedRequestRate());
      node.put("num_requests", level.numRequests());
      node.put("num_errors", level.numErrors());
      ObjectNode errors = node.putObject("errors");
      for (Map.Entry<String, Integer> e : level.errorsByCode().entrySet()) {
        errors.put(e.getKey(), e.getValue());
      }
      node.put("generated_tokens", level.generatedTokens());
      node.put("prompt_tokens", level.promptTokens());
      node.put("wall_seconds", level.wallSeconds());
      node.put("tokens_per_second", level.tokensPerSecond());
      node.put("request_throughput", level.requestThroughput());
      node.put("ratio", ratio(level));
      if (!slo.isEmpty()) {
        node.putObject("goodput").put("requests_meeting_slo", level.numMeeting(slo))
            .put("request_goodput", level.goodput(slo)).put("attainment", level.attainment(slo))
            .put("meets_slo", meetsSlo(level));
      }
      putLatency(node, "ttft_ms", level.ttft());
      putLatency(node, "tpot_ms", level.tpot());
      putLatency(node, "itl_ms", level.itl());
      putLatency(node, "e2e_ms", level.e2e());
      node.put("start_s", level.startNanos() / 1e9);
      if (!level.server().isEmpty()) {
        putServer(node, level);
      }
      ArrayNode requests = node.putArray("requests");
      for (RequestResult r : level.requests()) {
        ObjectNode request = requests.addObject();
        request.put("index", r.index());
        request.put("sent_ms", r.sentNanos() / 1e6);
        request.put("prompt_tokens", r.promptTokens());
        request.put("image_tokens", r.imageTokens());
        request.put("tokens", r.numTokens());
        if (r.ttftNanos() >= 0) {
          request.put("ttft_ms", r.ttftNanos() / 1e6);
        } else {
          request.putNull("ttft_ms");
        }
        request.put("tpot_ms", r.tpotNanos() / 1e6);
        ArrayNode itl = request.putArray("itl_ms");
        for (long gap : r.itlNanos()) {
          itl.add(gap / 1e6);
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

  /**
   * E.g. {@code chaos: kill-shard@1s (killed shard-0 at 1.00 s); after it 12 requests failed, 3
   * stalled (no token for > 1000 ms), worst stall 1234.5 ms}.
   */
  String chaosLine() {
    StringBuilder line = new StringBuilder("chaos: ");
    for (ChaosReport.Injected f : chaos.faults()) {
      line.append(f.fault()).append(" (").append(f.outcome());
      line.append(f.injected() ? " at %s s), ".formatted(fixed(f.atNanos() / 1e9, 2)) : "), ");
    }
    return line.append("after it %d requests failed, %d stalled (no token for > %s ms), worst stall %s ms".formatted(
        chaos.numFailed(levels), chaos.numStalled(levels), number(chaos.stallThresholdNanos() / 1e6),
        fixed(chaos.worstStallNanos(levels) / 1e6, 1))).toString();
  }

  /**
   * E.g. {@code server, rate 4/s: KV 12.5% mean, 40.0% max; waiting 0.2 mean, 3 max; ...}, ending
   * with the image cache's hits and misses and the coordinator's mean share of a step when the
   * coordinator publishes them.
   */
  static String serverLine(LevelResult level) {
    ServerContext server = level.server();
    return "server, %s: KV %s mean, %s max; waiting %s mean, %s max; running %s mean, %s max; %s preemptions; %s "
        .formatted(level.load().describe(), percent(server.kvUsageMean()), percent(server.kvUsageMax()),
            orDash(server.waitingMean(), 1), orDash(server.waitingMax(), 0), orDash(server.runningMean(), 1),
            orDash(server.runningMax(), 0), orDash(server.preemptions(), 0), orDash(server.meanBatchSize(), 2))
        + "sequences per step (%d samples of %d /metrics, %d failed)".formatted(server.samples().size(),
            server.targets().size(), server.numFailedScrapes())
        + (Double.isNaN(server.imageCacheHits()) ? "" : "; image cache %s hits, %s misses".formatted(
            orDash(server.imageCacheHits(), 0), orDash(server.imageCacheMisses(), 0)))
        + (Double.isNaN(server.coordinatorShareMean()) ? "" : "; coordinator %s of a step".formatted(
            percent(server.coordinatorShareMean())));
  }

  private static String percent(double fraction) {
    return Double.isNaN(fraction) ? "-" : fixed(100 * fraction, 1) + "%";
  }

  private static String orDash(double value, int decimals) {
    return Double.isNaN(value) ? "-" : fixed(value, decimals);
  }

  private static void putServer(ObjectNode level, LevelResult result) {
    ServerContext server = result.server();
    ObjectNode node = level.putObject("server");
    ArrayNode targets = node.putArray("targets");
    server.targets().forEach(targets::add);
    node.put("failed_scrapes", server.numFailedScrapes());
    if (server.numFailedScrapes() > 0) {
      node.put("first_failure", server.firstFailure());
    }
    putFinite(node, "kv_usage_mean", server.kvUsageMean());
    putFinite(node, "kv_usage_max", server.kvUsageMax());
    putFinite(node, "waiting_mean", server.waitingMean());
    putFinite(node, "waiting_max", server.waitingMax());
    putFinite(node, "running_mean", server.runningMean());
    putFinite(node, "running_max", server.runningMax());
    putFinite(node, "preemptions", server.preemptions());
    putFinite(node, "mean_batch_size", server.meanBatchSize());
    putFinite(node, "image_cache_hits", server.imageCacheHits());
    putFinite(node, "image_cache_misses", server.imageCacheMisses());
    putFinite(node, "coordinator_share_mean", server.coordinatorShareMean());
    ArrayNode samples = node.putArray("samples");
    for (ServerSample sample : server.samples()) {
      ObjectNode s = samples.addObject();
      s.put("at_s", sample.atNanos() / 1e9);
      putFinite(s, "kv_blocks_used", sample.kvBlocksUsed());
      putFinite(s, "kv_blocks_free", sample.kvBlocksFree());
      putFinite(s, "kv_usage", sample.kvUsage());
      putFinite(s, "waiting", sample.waiting());
      putFinite(s, "running", sample.running());
      putFinite(s, "preemptions_total", sample.preemptions());
      putFinite(s, "step_sequences_sum", sample.stepSequencesSum());
      putFinite(s, "step_sequences_count", sample.stepSequencesCount());
      putFinite(s, "image_cache_hits_total", sample.imageCacheHits());
      putFinite(s, "image_cache_misses_total", sample.imageCacheMisses());
      putFinite(s, "coordinator_share_sum", sample.coordinatorShareSum());
      putFinite(s, "coordinator_share_count", sample.coordinatorShareCount());
      s.put("answered", sample.numAnswered());
    }
  }

  /** {@code value}, or null when it is NaN (not known) or infinite. */
  private static void putFinite(ObjectNode node, String name, double value) {
    if (Double.isFinite(value)) {
      node.put(name, value);
    } else {
      node.putNull(name);
    }
  }

  private static void putLatency(ObjectNode parent, String name, Latency latency) {
    parent.putObject(name).put("count", latency.count()).put("mean", latency.meanMs()).put("p50", latency.p50Ms())
        .put("p90", latency.p90Ms()).put("p95", latency.p95Ms()).put("p99", latency.p99Ms())
        .put("max", latency.maxMs());
  }

  private static String fixed(double value, int decimals) {
    return String.format(Locale.ROOT, "%." + decimals + "f", value);
  }

  /** A number without trailing zeros: 2, 0.5, 12.25. */
  static String number(double value) {
    return java.math.BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
  }
}
