package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.cli.node.LocalCluster;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery loadtest --model}: starts a local cluster of stories260k (coordinator and one shard
 * worker as separate processes), runs two concurrency levels through the client SDK and stops it.
 */
class LoadTestCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_NEW_TOKENS = 8;

  @Test
  void levelsReportEveryRequestAndTheirTokens(@TempDir Path tmp) throws IOException {
    Path model = Fixtures.stories260k();
    Path nodeLog = tmp.resolve("nodes.log");

    // Prompt [BOS]: stories260k's greedy story runs far past 8 tokens without an EOS (expected.json).
    CliRun run = CliRun.of("loadtest", "--model", model.toString(), "--concurrency", "1,2", "--prompt-ids", "1",
        "--max-new-tokens", String.valueOf(MAX_NEW_TOKENS), "--warmup", "1", "--node-heap", "512m",
        "--node-log", nodeLog.toString(), "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode report = JSON.readTree(run.out());
    assertThat(report.get("max_new_tokens").asInt()).isEqualTo(MAX_NEW_TOKENS);
    JsonNode levels = report.get("levels");
    assertThat(levels).hasSize(2);
    assertThat(levels.get(0).get("ratio").asDouble()).isEqualTo(1.0);
    for (int i = 0; i < 2; i++) {
      JsonNode level = levels.get(i);
      assertThat(level.get("concurrency").asInt()).isEqualTo(i + 1);
      // --requests unset: 2 x concurrency, at least 4.
      assertThat(level.get("num_requests").asInt()).isEqualTo(4);
      assertThat(level.get("requests")).hasSize(4);
      assertThat(level.get("num_errors").asInt()).as(run.out()).isZero();
      assertThat(level.get("errors")).isEmpty();
      long sum = StreamSupport.stream(level.get("requests").spliterator(), false)
          .mapToLong(r -> r.get("tokens").asLong()).sum();
      assertThat(level.get("generated_tokens").asLong()).isEqualTo(sum).isEqualTo(4L * MAX_NEW_TOKENS);
      assertThat(level.get("tokens_per_second").asDouble()).isPositive();
      for (JsonNode request : level.get("requests")) {
        assertThat(request.get("status").asText()).isEqualTo("OK");
        assertThat(request.get("ttft_ms").asDouble()).isPositive()
            .isLessThanOrEqualTo(request.get("e2e_ms").asDouble());
      }
      assertThat(level.get("ttft_ms").get("count").asLong()).isEqualTo(4);
      assertThat(level.get("e2e_ms").get("count").asLong()).isEqualTo(4);
      assertThat(level.get("e2e_ms").get("p99").asDouble()).isGreaterThanOrEqualTo(level.get("e2e_ms").get("p50").asDouble());
      // The coordinator's and the shard worker's /metrics, found through the cluster status.
      JsonNode server = level.get("server");
      assertThat(server.get("targets")).hasSize(2);
      assertThat(server.get("failed_scrapes").asInt()).as(server.toString()).isZero();
      assertThat(server.get("samples").get(0).get("kv_blocks_free").asDouble()).isPositive();
      assertThat(server.get("kv_usage_max").asDouble()).isBetween(0.0, 1.0);
      assertThat(server.get("preemptions").asDouble()).isZero();
      assertThat(server.get("mean_batch_size").asDouble()).isBetween(1.0, (double) (i + 1));
    }
    assertThat(run.err()).contains("loadtest: concurrency 1: 4 requests, 0 errors, 32 tokens in ")
        .contains("loadtest: concurrency 2: 4 requests, 0 errors, 32 tokens in ");
  }

  @Test
  void poissonArrivalsOnARealClusterKeepTheirRateAndASweepStopsWhereTheSloBreaks(@TempDir Path tmp)
      throws IOException, InterruptedException {
    // 40/s is far below what one stories260k shard serves at two new tokens (one inter-token gap each,
    // for the report's ITL plot); 100,000/s sends all 200 requests at once into a coordinator that
    // queues at most --max-queued of them.
    Path report = tmp.resolve("report.html");
    CliRun run = CliRun.of("loadtest", "--model", Fixtures.stories260k().toString(), "--rate", "40,100000,200000",
        "--requests", "200", "--seed", "7", "--prompt-ids", "1", "--max-new-tokens", "2", "--warmup", "1",
        "--slo", "e2e=2s", "--node-heap", "512m", "--coordinator-arg=--max-queued=16",
        "--node-log", tmp.resolve("nodes.log").toString(), "--report", report.toString(), "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode levels = JSON.readTree(run.out()).get("levels");
    assertThat(levels).as("the sweep stops after the level that misses the SLO").hasSize(2);
    JsonNode steady = levels.get(0);
    assertThat(steady.get("request_rate").asDouble()).isEqualTo(40.0);
    assertThat(steady.get("num_requests").asInt()).isEqualTo(200);
    assertThat(steady.get("num_errors").asInt()).isZero();
    assertThat(steady.get("achieved_request_rate").asDouble()).isBetween(36.0, 44.0);
    assertThat(steady.get("goodput").get("meets_slo").asBoolean()).isTrue();
    JsonNode flood = levels.get(1);
    assertThat(flood.get("errors").get("RESOURCE_EXHAUSTED").asInt()).isPositive();
    assertThat(flood.get("goodput").get("meets_slo").asBoolean()).isFalse();

    // The sweep's report, opened in headless Chromium: it renders, its plots hold this run's data.
    Process check = new ProcessBuilder("bash", Path.of("..", "scripts", "check-loadtest-report.sh").toString(),
        report.toString(), tmp.resolve("report.png").toString()).redirectErrorStream(true).start();
    check.getOutputStream().close();
    String checked = new String(check.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertThat(check.waitFor(5, java.util.concurrent.TimeUnit.MINUTES)).as(checked).isTrue();
    assertThat(check.exitValue()).as(checked).isZero();
    assertThat(checked.lines()).contains("plot ttft-load: 2 series, 4 points");
    assertThat(checked).containsPattern("plot ttft-cdf: 2 series, \\d+ points")
        .containsPattern("plot kv-usage: 2 series, \\d+ points");
  }

  @Test
  void aKilledShardIsMarkedAndItsFailedRequestsCounted(@TempDir Path tmp) throws IOException {
    Path report = tmp.resolve("report.html");

    CliRun run = CliRun.of("loadtest", "--model", Fixtures.stories260k().toString(), "--rate", "20", "--duration", "2s",
        "--prompt-ids", "1", "--max-new-tokens", "4", "--warmup", "1", "--node-heap", "512m", "--timeout", "PT20S",
        "--node-log", tmp.resolve("nodes.log").toString(), "--chaos", "kill-shard@700ms", "--report", report.toString(),
        "--output", "json", "--coordinator-arg=--reform-timeout=PT1S");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode json = JSON.readTree(run.out());
    JsonNode fault = json.get("chaos").get("faults").get(0);
    assertThat(fault.get("injected").asBoolean()).as(run.err()).isTrue();
    assertThat(fault.get("outcome").asText()).isEqualTo("killed shard-0");
    assertThat(fault.get("at_s").asDouble()).isGreaterThanOrEqualTo(0.7);
    // The group's only shard is gone, and nothing replaces it within the re-form timeout: requests
    // after it fail (UNAVAILABLE), and each failure counts.
    JsonNode level = json.get("levels").get(0);
    assertThat(level.get("errors").get("UNAVAILABLE").asInt()).isPositive();
    assertThat(json.get("chaos").get("requests_failed").asInt()).isEqualTo(level.get("num_errors").asInt());
    assertThat(level.get("server").get("failed_scrapes").asInt()).isPositive();
    assertThat(Files.readString(report)).contains(">kill-shard</text>");
    assertThat(run.err()).contains("loadtest: chaos: kill-shard@0.7s (killed shard-0 at ");
  }

  @Test
  void repeatedImagesHitTheCoordinatorsImageCacheAndDistinctOnesMiss(@TempDir Path tmp) throws IOException {
    StringWriter log = new StringWriter();
    JsonNode repeated;
    JsonNode distinct;
    // One cluster for both runs: the distinct pictures are new to the cache the repeated run filled.
    try (LocalCluster cluster = LocalCluster.start(Fixtures.tinyOwl2(), 1, 1, 0, new PrintWriter(log, true),
        List.of("-Xmx512m"))) {
      cluster.awaitReady(1, Duration.ofSeconds(120));
      String[] args = {"loadtest", "--server", cluster.coordinatorAddress(), "--synthetic", "--synthetic-images", "1",
          "--image-size", "64x48", "--input-tokens", "fixed:6", "--output-tokens", "fixed:2", "--concurrency", "2",
          "--requests", "4", "--warmup", "1", "--output", "json"};
      CliRun first = CliRun.of(args);
      CliRun second = CliRun.of(Stream.concat(Arrays.stream(args), Stream.of("--distinct-images")).toArray(String[]::new));
      assertThat(first.exitCode()).as(first.err() + log).isZero();
      assertThat(second.exitCode()).as(second.err() + log).isZero();
      repeated = JSON.readTree(first.out()).get("levels").get(0);
      distinct = JSON.readTree(second.out()).get("levels").get(0);
    }

    // The warm-up request encoded the repeated picture; each of the level's 4 requests found it cached.
    assertThat(repeated.get("num_errors").asInt()).isZero();
    assertThat(repeated.get("server").get("image_cache_hits").asDouble()).isEqualTo(4.0);
    assertThat(repeated.get("server").get("image_cache_misses").asDouble()).isZero();
    assertThat(distinct.get("num_errors").asInt()).isZero();
    assertThat(distinct.get("server").get("image_cache_hits").asDouble()).isZero();
    assertThat(distinct.get("server").get("image_cache_misses").asDouble()).isEqualTo(4.0);
    assertThat(distinct.get("requests").get(0).get("image_tokens").asInt()).isPositive();
  }

  @Test
  void aRestartedCoordinatorIsMarkedAndTheShardGroupFormsAgainUnderTheNewOne(@TempDir Path tmp) throws IOException {
    Path report = tmp.resolve("report.html");

    CliRun run = CliRun.of("loadtest", "--model", Fixtures.stories260k().toString(), "--rate", "10", "--duration", "1s",
        "--prompt-ids", "1", "--max-new-tokens", "4", "--warmup", "1", "--node-heap", "512m", "--timeout", "PT20S",
        "--node-log", tmp.resolve("nodes.log").toString(), "--chaos", "restart-coordinator@300ms", "--report",
        report.toString(), "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode json = JSON.readTree(run.out());
    JsonNode fault = json.get("chaos").get("faults").get(0);
    assertThat(fault.get("injected").asBoolean()).as(run.err()).isTrue();
    // "serving again": the new coordinator reports a READY group of the shard the old one placed.
    assertThat(fault.get("outcome").asText()).as(Files.readString(tmp.resolve("nodes.log")))
        .matches("restarted coordinator-[0-9a-f]{8} as coordinator-[0-9a-f]{8}-1, serving again after \\d+\\.\\d\\d s");
    // Requests sent while no coordinator listened failed, and each failure counts.
    JsonNode level = json.get("levels").get(0);
    assertThat(level.get("errors").get("UNAVAILABLE").asInt()).isPositive();
    assertThat(json.get("chaos").get("requests_failed").asInt()).isEqualTo(level.get("num_errors").asInt());
    assertThat(Files.readString(report)).contains(">restart-coordinator</text>");
  }

  @Test
  void compareNeedsNoCluster(@TempDir Path tmp) throws IOException {
    String report = """
        {"levels": [{"concurrency": 1, "wall_seconds": 0.1, "requests": [
          {"sent_ms": 0, "ttft_ms": 10, "tpot_ms": 0, "itl_ms": [], "e2e_ms": 10, "tokens": 1, "status": "OK"}]}]}
        """;
    Path a = Files.writeString(tmp.resolve("a.json"), report);
    Path b = Files.writeString(tmp.resolve("b.json"), report);

    CliRun run = CliRun.of("loadtest", "compare", a.toString(), b.toString());
    CliRun noTarget = CliRun.of("loadtest", "--prompt", "Hi");

    assertThat(run.exitCode()).as(run.err()).isZero();
    assertThat(run.out()).containsPattern("concurrency 1 +ttft_p50_ms +10\\.000 +10\\.000 +1\\.00  too_few");
    assertThat(noTarget.exitCode()).isEqualTo(2);
    assertThat(noTarget.err()).contains("owlery: error: give --server HOST:PORT (a running coordinator) or --model DIR");
  }

  @Test
  void aClusterThatCannotStartIsSaidInOneLineWithTheNodesLastLines(@TempDir Path tmp) {
    CliRun run = CliRun.of("loadtest", "--model", tmp.resolve("no-model").toString(), "--prompt", "Hi",
        "--node-log", tmp.resolve("nodes.log").toString());

    assertThat(run.exitCode()).isEqualTo(1);
    assertThat(run.err()).containsPattern("owlery loadtest: coordinator-[0-9a-f]{8} \\(coordinator\\) exited with status \\d+ "
        + "while starting; its last lines:");
    assertThat(run.err()).contains("no such directory: " + tmp.resolve("no-model"));
    assertThat(run.err()).doesNotContain("\tat ");
  }

  @Test
  void clusterOptionsNeedModelAndLevelsMustBePositive() {
    CliRun shardsWithServer = CliRun.of("loadtest", "--server", "127.0.0.1:1", "--shards", "2", "--prompt", "Hi");
    CliRun zeroLevel = CliRun.of("loadtest", "--server", "127.0.0.1:1", "--concurrency", "1,0", "--prompt", "Hi");

    assertThat(shardsWithServer.exitCode()).isEqualTo(2);
    assertThat(shardsWithServer.err()).contains("owlery: error: --shards, --vision-workers and --coordinator-arg set up the local cluster of --model");
    CliRun chaosWithServer = CliRun.of("loadtest", "--server", "127.0.0.1:1", "--chaos", "kill-shard@1s", "--prompt", "Hi");
    CliRun unknownFault = CliRun.of("loadtest", "--model", "m", "--chaos", "reboot@1s", "--prompt", "Hi");

    assertThat(chaosWithServer.err()).contains("owlery: error: --chaos needs the cluster this command starts (--model)");
    assertThat(unknownFault.err()).contains("owlery: error: --chaos reboot@1s: the kinds are kill-shard, kill-vision "
        + "and restart-coordinator");
    assertThat(zeroLevel.exitCode()).isEqualTo(2);
    assertThat(zeroLevel.err()).contains("owlery: error: --concurrency levels must be >= 1, got 0");
  }
}
