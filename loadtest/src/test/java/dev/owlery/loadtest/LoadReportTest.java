package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The report of hand-made levels: totals, errors by code, the ratio to the first level, table and JSON. */
class LoadReportTest {

  private static final long MS = 1_000_000;

  private static RequestResult ok(int tokens, long ttftMs, long e2eMs) {
    return result(tokens, ttftMs * MS, e2eMs * MS, Status.Code.OK, "");
  }

  private static RequestResult result(int tokens, long ttftNanos, long e2eNanos, Status.Code code, String error) {
    return new RequestResult(0, 0, 0, 0, tokens, ttftNanos, new long[0], e2eNanos, code, error);
  }

  /** A hand-made summary with these two percentiles. */
  private static Latency latency(long count, double p50Ms, double p99Ms) {
    return new Latency(count, p50Ms, p50Ms, p99Ms, p99Ms, p99Ms, p99Ms);
  }

  private final LevelResult one = new LevelResult(new Load.Concurrency(1),
      List.of(ok(8, 10, 100), ok(8, 12, 110)), 2_000 * MS, latency(2, 10, 12), latency(2, 12, 13),
      latency(14, 12.5, 13), latency(2, 100, 110), 0, ServerContext.NONE);
  private final LevelResult four = new LevelResult(new Load.Concurrency(4),
      List.of(ok(8, 20, 150), ok(8, 21, 160),
          result(3, 30 * MS, 40 * MS, Status.Code.UNAVAILABLE, "shard group group-0 is DOWN"),
          result(0, -1, 5 * MS, Status.Code.RESOURCE_EXHAUSTED, "the queue is full")), 1_000 * MS,
      latency(2, 20, 21), latency(2, 18, 19), latency(14, 19, 25), latency(2, 150, 160), 2_000 * MS,
      ServerContext.NONE);
  private final LoadReport report = new LoadReport("127.0.0.1:7070", 8, List.of(one, four), Slo.NONE, 0.9,
      ChaosReport.NONE);

  @Test
  void levelsCountTokensOfEveryRequestAndErrorsByCode() {
    assertThat(one.generatedTokens()).isEqualTo(16);
    assertThat(one.tokensPerSecond()).isEqualTo(8.0);
    // Failed requests' tokens were delivered, so they count.
    assertThat(four.generatedTokens()).isEqualTo(19);
    assertThat(four.numErrors()).isEqualTo(2);
    assertThat(four.errorsByCode()).containsExactly(Map.entry("RESOURCE_EXHAUSTED", 1),
        Map.entry("UNAVAILABLE", 1));
    assertThat(four.firstError()).isEqualTo("UNAVAILABLE: shard group group-0 is DOWN");
    assertThat(report.ratio(one)).isEqualTo(1.0);
    assertThat(report.ratio(four)).isEqualTo(19.0 / 8.0);
  }

  @Test
  void tableHasOneLinePerLevel() {
    List<String> lines = report.table().lines().toList();

    assertThat(lines).hasSize(4);
    assertThat(lines.get(0).trim().split(" +")).containsExactly("concurrency", "requests", "errors", "tokens", "wall_s",
        "tokens/s", "ratio", "ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "e2e_p50", "e2e_p99");
    assertThat(lines.get(1).trim().split(" +")).containsExactly("1", "2", "0", "16", "2.00", "8.0", "1.00", "10.0",
        "12.0", "12.5", "13.0", "100.0", "110.0");
    assertThat(lines.get(2).trim().split(" +")).containsExactly("4", "4", "2", "19", "1.00", "19.0", "2.38", "20.0",
        "21.0", "19.0", "25.0", "150.0", "160.0");
  }

  @Test
  void jsonHoldsLevelsAndRequests() throws IOException {
    JsonNode root = new ObjectMapper().readTree(report.json());

    assertThat(root.get("target").asText()).isEqualTo("127.0.0.1:7070");
    JsonNode level = root.get("levels").get(1);
    assertThat(level.get("num_requests").asInt()).isEqualTo(4);
    assertThat(level.get("errors").get("UNAVAILABLE").asInt()).isEqualTo(1);
    assertThat(level.get("generated_tokens").asLong()).isEqualTo(19);
    assertThat(level.get("ratio").asDouble()).isEqualTo(19.0 / 8.0);
    assertThat(level.get("itl_ms").get("p99").asDouble()).isEqualTo(25.0);
    JsonNode rejected = level.get("requests").get(3);
    assertThat(rejected.get("ttft_ms").isNull()).isTrue();
    assertThat(rejected.get("status").asText()).isEqualTo("RESOURCE_EXHAUSTED");
    assertThat(rejected.get("error").asText()).isEqualTo("the queue is full");
    assertThat(level.get("requests").get(0).has("error")).isFalse();
  }
}
