package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.loadtest.RunComparison.Row;
import dev.owlery.loadtest.RunComparison.Verdict;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.IntToDoubleFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code loadtest compare} on hand-made reports: ratios, verdicts beyond the noise, level matching, the command. */
class RunComparisonTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir
  Path tmp;

  /**
   * A report of one level: request {@code i} is sent at {@code 10 i} ms, its first token comes
   * {@code ttft(i)} ms later, then {@code tokens - 1} more, 5 ms apart, in one delta each.
   */
  private static ObjectNode report(String loadKey, double load, int numRequests, int tokens, IntToDoubleFunction ttft) {
    ObjectNode root = JSON.createObjectNode();
    addLevel(root, loadKey, load, numRequests, tokens, ttft);
    return root;
  }

  private static void addLevel(ObjectNode root, String loadKey, double load, int numRequests, int tokens,
      IntToDoubleFunction ttft) {
    ObjectNode level = (root.has("levels") ? (ArrayNode) root.get("levels") : root.putArray("levels")).addObject();
    level.put(loadKey, load);
    ArrayNode requests = level.putArray("requests");
    double end = 0;
    for (int i = 0; i < numRequests; i++) {
      double first = ttft.applyAsDouble(i);
      ObjectNode r = requests.addObject().put("sent_ms", 10.0 * i).put("ttft_ms", first).put("tpot_ms", 5.0)
          .put("e2e_ms", first + 5.0 * (tokens - 1)).put("tokens", tokens).put("status", "OK");
      ArrayNode itl = r.putArray("itl_ms");
      for (int k = 1; k < tokens; k++) {
        itl.add(5.0);
      }
      end = Math.max(end, 10.0 * i + first + 5.0 * (tokens - 1));
    }
    level.put("wall_seconds", end / 1000);
  }

  private Path write(String name, JsonNode report) throws IOException {
    Path file = tmp.resolve(name);
    Files.writeString(file, report.toPrettyString());
    return file;
  }

  private static Row row(RunComparison comparison, String metric) {
    return comparison.rows().stream().filter(r -> r.metric().equals(metric)).findFirst().orElseThrow();
  }

  @Test
  void aSlowerFirstTokenBeyondTheNoiseIsWorseAndUnchangedMetricsAreTheSame() throws IOException {
    Path a = write("a.json", report("concurrency", 4, 30, 5, i -> 10 + i % 5));
    Path b = write("b.json", report("concurrency", 4, 30, 5, i -> 60 + i % 5));

    RunComparison comparison = RunComparison.of(a, b);

    Row ttft = row(comparison, "ttft_p50_ms");
    assertThat(ttft.level()).isEqualTo("concurrency 4");
    assertThat(ttft.a().value()).isEqualTo(12.0);
    assertThat(ttft.b().value()).isEqualTo(62.0);
    assertThat(ttft.ratio()).isEqualTo(62.0 / 12.0);
    assertThat(ttft.verdict()).isEqualTo(Verdict.WORSE);
    assertThat(row(comparison, "e2e_p99_ms").verdict()).isEqualTo(Verdict.WORSE);
    assertThat(row(comparison, "itl_p50_ms").verdict()).isEqualTo(Verdict.SAME);
    assertThat(row(comparison, "itl_p50_ms").a().numSamples()).isEqualTo(30 * 4);
    assertThat(row(comparison, "tpot_p50_ms").verdict()).isEqualTo(Verdict.SAME);
    assertThat(row(comparison, "error_rate").verdict()).isEqualTo(Verdict.SAME);
    assertThat(comparison.anyWorse()).isTrue();
  }

  @Test
  void twoSamplesOfOneDistributionAreTheSame() throws IOException {
    Random first = new Random(1);
    Random second = new Random(2);
    Path a = write("a.json", report("request_rate", 2, 40, 3, i -> 20 * -Math.log(1 - first.nextDouble())));
    Path b = write("b.json", report("request_rate", 2, 40, 3, i -> 20 * -Math.log(1 - second.nextDouble())));

    RunComparison comparison = RunComparison.of(a, b);

    Row ttft = row(comparison, "ttft_p50_ms");
    assertThat(ttft.level()).isEqualTo("rate 2/s");
    assertThat(ttft.a().value()).isNotEqualTo(ttft.b().value());
    assertThat(ttft.a().low()).isLessThan(ttft.a().value());
    assertThat(ttft.a().high()).isGreaterThan(ttft.a().value());
    assertThat(ttft.verdict()).isEqualTo(Verdict.SAME);
    assertThat(row(comparison, "e2e_p50_ms").verdict()).isEqualTo(Verdict.SAME);
  }

  @Test
  void twiceTheTokensInTheSameTimeIsBetterThroughput() throws IOException {
    Path a = write("a.json", report("concurrency", 1, 30, 5, i -> 10));
    // Ten tokens in the same five deltas: two per delta. The last request ends at 290 + 10 + 4 x 5 ms.
    ObjectNode twice = report("concurrency", 1, 30, 5, i -> 10);
    twice.get("levels").get(0).get("requests").forEach(r -> ((ObjectNode) r).put("tokens", 10));
    Path b = write("b.json", twice);

    RunComparison comparison = RunComparison.of(a, b);

    Row tokens = row(comparison, "tokens_per_second");
    assertThat(tokens.ratio()).isCloseTo(2.0, org.assertj.core.data.Offset.offset(1e-9));
    assertThat(tokens.a().value()).isCloseTo(150 / 0.32, org.assertj.core.data.Offset.offset(1e-6));
    assertThat(tokens.verdict()).isEqualTo(Verdict.BETTER);
    assertThat(row(comparison, "request_throughput").verdict()).isEqualTo(Verdict.SAME);
    assertThat(comparison.anyWorse()).isFalse();
  }

  @Test
  void tooFewRequestsGiveNoVerdict() throws IOException {
    RunComparison comparison = RunComparison.of(write("a.json", report("concurrency", 1, 3, 2, i -> 10)),
        write("b.json", report("concurrency", 1, 3, 2, i -> 90)));

    assertThat(row(comparison, "ttft_p50_ms").verdict()).isEqualTo(Verdict.TOO_FEW);
  }

  @Test
  void levelsAreMatchedByTheirLoad() throws IOException {
    ObjectNode a = report("concurrency", 1, 10, 2, i -> 10);
    addLevel(a, "concurrency", 4, 10, 2, i -> 10);
    ObjectNode b = report("concurrency", 4, 10, 2, i -> 10);
    addLevel(b, "concurrency", 16, 10, 2, i -> 10);

    RunComparison comparison = RunComparison.of(write("a.json", a), write("b.json", b));

    assertThat(comparison.rows()).extracting(Row::level).containsOnly("concurrency 4");
    assertThat(comparison.table()).contains("only in A: concurrency 1").contains("only in B: concurrency 16");
  }

  @Test
  void theCommandPrintsATableOrJsonAndCanFailOnWorse() throws IOException {
    String a = write("a.json", report("concurrency", 4, 30, 5, i -> 10 + i % 5)).toString();
    String b = write("b.json", report("concurrency", 4, 30, 5, i -> 60 + i % 5)).toString();
    Files.writeString(tmp.resolve("broken.json"), "{\"levels\": [");
    Files.writeString(tmp.resolve("status.json"), "{\"groups\": []}");

    LoadTestTest.Run table = LoadTestTest.Run.of("compare", a, b);
    LoadTestTest.Run json = LoadTestTest.Run.of("compare", a, b, "--output", "json");
    LoadTestTest.Run gate = LoadTestTest.Run.of("compare", a, b, "--fail-on-worse");
    LoadTestTest.Run broken = LoadTestTest.Run.of("compare", tmp.resolve("broken.json").toString(), b);
    LoadTestTest.Run notReport = LoadTestTest.Run.of("compare", tmp.resolve("status.json").toString(), b);

    assertThat(table.exitCode()).as(table.err()).isZero();
    assertThat(table.out()).contains("A: " + a).containsPattern("concurrency 4 +ttft_p50_ms +12\\.000 +62\\.000 +5\\.17  worse");
    assertThat(JSON.readTree(json.out()).get("rows").get(0).get("verdict").asText()).isEqualTo("worse");
    assertThat(gate.exitCode()).isEqualTo(1);
    assertThat(broken.exitCode()).isEqualTo(2);
    assertThat(broken.err()).startsWith("loadtest: error: " + tmp.resolve("broken.json") + " is not JSON (");
    assertThat(notReport.err()).isEqualTo("loadtest: error: " + tmp.resolve("status.json")
        + " has no \"levels\": compare reads the output of loadtest --output json\n");
  }
}
