package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code --report} page of a real run (a real gRPC server, real /metrics endpoints) opened in
 * headless Chromium by {@code scripts/check-loadtest-report.sh}: it renders, every plot has its
 * data points, the browser logs no console message. The script installs Chromium when absent (CI runs as
 * root); the screenshot is left at {@code loadtest/target/loadtest-report.png}.
 */
class HtmlReportBrowserTest {

  private static final Path SCRIPT = Path.of("..", "scripts", "check-loadtest-report.sh");

  @Test
  void theReportRendersWithDataInEveryPlotAndNoConsoleMessage(@TempDir Path tmp)
      throws IOException, InterruptedException {
    Path report = tmp.resolve("report.html");
    Path screenshot = Path.of("target", "loadtest-report.png").toAbsolutePath();
    try (QueueingOwlery server = new QueueingOwlery(2_000_000, 1_000_000); MetricsEndpoint metrics = new MetricsEndpoint()) {
      server.nodes.add(NodeStatus.newBuilder().setNodeId("coordinator-0").setRole(NodeRole.NODE_ROLE_COORDINATOR)
          .setState(NodeState.NODE_STATE_READY).setMetricsUrl(metrics.url("/coordinator")).build());
      LoadTestTest.Run run = LoadTestTest.Run.of("--server", server.address(), "--prompt-ids", "1", "--rate",
          "50,100", "--requests", "20", "--max-new-tokens", "4", "--warmup", "0", "--slo", "ttft=100ms",
          "--report", report.toString());
      assertThat(run.exitCode()).as(run.err()).isZero();
      assertThat(run.err()).contains("loadtest: report written to " + report);
    }

    Result check = run(Path.of("."), "bash", SCRIPT.toString(), report.toString(), screenshot.toString());

    assertThat(check.exitCode()).as(check.output()).isZero();
    // Two levels of 20 requests: a CDF point per request (ITL: 3 gaps each), p50 and p99 per level.
    assertThat(check.output().lines()).contains("plot ttft-cdf: 2 series, 40 points", "plot itl-cdf: 2 series, 120 points",
        "plot e2e-cdf: 2 series, 40 points", "plot ttft-load: 2 series, 4 points");
    assertThat(check.output()).containsPattern("plot throughput: 2 series, \\d+ points")
        .containsPattern("plot kv-usage: 2 series, \\d+ points").containsPattern("plot queue: 2 series, \\d+ points");
    assertThat(Files.size(screenshot)).isPositive();
  }

  @Test
  void aScriptErrorOrAPlotWithoutDataFailsTheCheck(@TempDir Path tmp) throws IOException, InterruptedException {
    Path page = tmp.resolve("broken.html");
    Files.writeString(page, """
        <!DOCTYPE html><html><body>
        <svg id="ttft-cdf" class="plot" xmlns="http://www.w3.org/2000/svg"><path class="series" data-points="0" d=""/></svg>
        <script>notDefined();</script>
        </body></html>
        """);

    Result check = run(Path.of("."), "bash", SCRIPT.toString(), page.toString(), tmp.resolve("broken.png").toString());

    assertThat(check.exitCode()).isEqualTo(1);
    assertThat(check.output()).contains("Uncaught ReferenceError: notDefined is not defined")
        .contains("plot ttft-cdf: 0 series, 0 points").contains("check-loadtest-report: plot ttft-cdf has no data point");
  }

  record Result(int exitCode, String output) {}

  private static Result run(Path dir, String... command) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    process.getOutputStream().close();
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(10, TimeUnit.MINUTES)) {
      process.destroyForcibly();
      fail(String.join(" ", command) + " did not end within 10 minutes");
    }
    return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }
}
