package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Faults injected at their time during a run, and what the requests around them saw. */
class ChaosTest {

  private static final long MS = 1_000_000;
  private static final ObjectMapper JSON = new ObjectMapper();

  private static RequestResult request(long sentMs, long ttftMs, long[] itlMs, long e2eMs, Status.Code code) {
    long[] itl = java.util.Arrays.stream(itlMs).map(v -> v * MS).toArray();
    return new RequestResult(0, sentMs * MS, 1, 0, itl.length + (ttftMs >= 0 ? 1 : 0), ttftMs < 0 ? -1 : ttftMs * MS,
        itl, e2eMs * MS, code, code == Status.Code.OK ? "" : "broken");
  }

  @Test
  void requestsRunningAtOrAfterTheFaultAreCountedFailedOrStalled() {
    // Level 2 starts 1,000 ms into the run; the fault is at 1,100 ms.
    LevelResult first = LevelResult.of(new Load.Concurrency(1), List.of(
        request(0, 10, new long[] {5}, 20, Status.Code.OK),
        // Failed, but ended before the fault: not the fault's doing.
        request(100, -1, new long[0], 30, Status.Code.UNAVAILABLE)), 1_000 * MS).in(0, ServerContext.NONE);
    LevelResult second = LevelResult.of(new Load.Concurrency(1), List.of(
        request(0, 10, new long[] {5, 5}, 20, Status.Code.OK),
        // Running at the fault: a 700 ms gap between tokens.
        request(50, 10, new long[] {700, 5}, 720, Status.Code.OK),
        // Hung 2,000 ms after its first token, then failed.
        request(90, 10, new long[0], 2_010, Status.Code.UNAVAILABLE),
        // Sent after the fault, failed at once without a token.
        request(200, -1, new long[0], 3, Status.Code.UNAVAILABLE)), 2_500 * MS).in(1_000 * MS, ServerContext.NONE);
    ChaosReport chaos = new ChaosReport(List.of(new ChaosReport.Injected(Fault.parse("kill-shard@1.1s"), 1_100 * MS,
        "killed shard-0", true)), 500 * MS);
    List<LevelResult> levels = List.of(first, second);

    assertThat(chaos.numFailed(levels)).isEqualTo(2);
    assertThat(chaos.numStalled(levels)).isEqualTo(2);
    assertThat(chaos.worstStallNanos(levels)).isEqualTo(2_000 * MS);
    String line = new LoadReport("t", 8, levels, Slo.NONE, 0.9, chaos).chaosLine();
    assertThat(line).isEqualTo("chaos: kill-shard@1.1s (killed shard-0 at 1.10 s), after it 2 requests failed, "
        + "2 stalled (no token for > 500 ms), worst stall 2000.0 ms");
    String html = HtmlReport.render(new LoadReport("t", 8, levels, Slo.NONE, 0.9, chaos), List.of(), Instant.EPOCH);
    // The fault is marked on the three plots over time.
    assertThat(html.split("<text class=\"marker-label\" x=\"[0-9.]+\" y=\"42\">kill-shard</text>", -1)).hasSize(4);
  }

  @Test
  void aFaultIsInjectedAtItsTimeAndTheRequestsAfterItFail() throws Exception {
    try (QueueingOwlery server = new QueueingOwlery(1_000_000, 0)) {
      LoadTest command = new LoadTest();
      new CommandLine(command).parseArgs("--server", server.address(), "--prompt-ids", "1", "--rate", "100",
          "--duration", "600ms", "--max-new-tokens", "1", "--warmup", "0", "--output", "json");
      StringWriter out = new StringWriter();
      StringWriter err = new StringWriter();
      ChaosPlan plan = new ChaosPlan(List.of(Fault.parse("break@300ms"), Fault.parse("break@1h")),
          Duration.ofMillis(500), fault -> {
            server.failWith = Status.UNAVAILABLE.withDescription("the fake is broken");
            return "broke the fake";
          });

      int code = new LoadTestRunner(command.options, new PrintWriter(out, true), new PrintWriter(err, true), false)
          .run(server.address(), plan);

      assertThat(code).as(err.toString()).isZero();
      JsonNode report = JSON.readTree(out.toString());
      JsonNode faults = report.get("chaos").get("faults");
      assertThat(faults.get(0).get("injected").asBoolean()).isTrue();
      assertThat(faults.get(0).get("outcome").asText()).isEqualTo("broke the fake");
      double at = faults.get(0).get("at_s").asDouble();
      assertThat(at).isGreaterThanOrEqualTo(0.3);
      assertThat(faults.get(1).get("injected").asBoolean()).isFalse();
      assertThat(faults.get(1).get("outcome").asText()).isEqualTo("not injected: the run ended before its time");
      JsonNode level = report.get("levels").get(0);
      int failed = level.get("errors").get("UNAVAILABLE").asInt();
      assertThat(failed).isPositive();
      assertThat(report.get("chaos").get("requests_failed").asInt()).isEqualTo(failed);
      // Every request sent after the fault failed; none before it did.
      for (JsonNode r : level.get("requests")) {
        boolean ok = r.get("status").asText().equals("OK");
        if (!ok) {
          assertThat(r.get("sent_ms").asDouble() + r.get("e2e_ms").asDouble()).isGreaterThanOrEqualTo(at * 1000);
        }
      }
      assertThat(err.toString()).contains("loadtest: chaos: break@0.3s (broke the fake at ")
          .contains("break@3600s (not injected: the run ended before its time)");
    }
  }
}
