package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The standalone {@code loadtest} command against a real gRPC server implementing owlery.v1. */
class LoadTestTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private QueueingOwlery server;

  record Run(int exitCode, String out, String err) {
    static Run of(String... args) {
      StringWriter out = new StringWriter();
      StringWriter err = new StringWriter();
      var cli = LoadTest.commandLine();
      cli.setOut(new PrintWriter(out, true));
      cli.setErr(new PrintWriter(err, true));
      int code = cli.execute(args);
      return new Run(code, out.toString(), err.toString());
    }
  }

  @BeforeEach
  void startServer() throws IOException {
    server = new QueueingOwlery(0, 0);
  }

  @AfterEach
  void stopServer() throws InterruptedException {
    server.close();
  }

  @Test
  void poissonArrivalsReachTheAskedRate() throws IOException {
    Run run = Run.of("--server", server.address(), "--prompt-ids", "1", "--rate", "100", "--requests", "200",
        "--max-new-tokens", "2", "--warmup", "0", "--seed", "1", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode level = JSON.readTree(run.out()).get("levels").get(0);
    assertThat(level.get("request_rate").asDouble()).isEqualTo(100.0);
    assertThat(level.get("burstiness").asDouble()).isEqualTo(1.0);
    assertThat(level.get("num_requests").asInt()).isEqualTo(200);
    assertThat(level.get("num_errors").asInt()).isZero();
    assertThat(level.get("achieved_request_rate").asDouble()).isBetween(90.0, 110.0);
  }

  @Test
  void sweepStopsAtTheFirstRateThatMissesTheSlo() throws IOException, InterruptedException {
    server.close();
    // One slot, 4 ms per request: fine at 25 and 50 requests/s (10% and 20% busy); at 5,000/s the
    // 40 requests arrive within ~8 ms and the queue makes the later ones wait > 100 ms.
    server = new QueueingOwlery(4_000_000, 0);

    Run run = Run.of("--server", server.address(), "--prompt-ids", "1", "--rate", "25,50,5000,10000",
        "--requests", "40", "--max-new-tokens", "1", "--warmup", "0", "--slo", "ttft=100ms", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode report = JSON.readTree(run.out());
    assertThat(report.get("slo").get("ttft_ms").asDouble()).isEqualTo(100.0);
    JsonNode levels = report.get("levels");
    assertThat(levels).hasSize(3);
    assertThat(levels.get(0).get("goodput").get("meets_slo").asBoolean()).isTrue();
    assertThat(levels.get(1).get("goodput").get("meets_slo").asBoolean()).isTrue();
    assertThat(levels.get(2).get("goodput").get("meets_slo").asBoolean()).isFalse();
    assertThat(levels.get(2).get("goodput").get("attainment").asDouble()).isLessThan(0.9);
    assertThat(levels.get(2).get("ttft_ms").get("max").asDouble()).isGreaterThan(100.0);
    assertThat(run.err()).contains("loadtest: rate 5000/s: 40 requests, 0 errors").contains("missed: the sweep stops here");
  }

  @Test
  void theSameSeedSendsTheSameRequests() throws IOException {
    String[] args = {"--server", server.address(), "--synthetic", "--input-tokens", "uniform:2:40", "--output-tokens",
        "uniform:1:4", "--rate", "200", "--requests", "20", "--warmup", "0", "--seed", "5", "--output", "json"};

    Run first = Run.of(args);
    List<GenerateRequest> firstRequests = List.copyOf(server.received);
    server.received.clear();
    Run second = Run.of(args);

    assertThat(first.exitCode()).as(first.err()).isZero();
    assertThat(second.exitCode()).as(second.err()).isZero();
    assertThat(firstRequests).hasSize(20).doesNotHaveDuplicates();
    assertThat(server.received).containsExactlyInAnyOrderElementsOf(firstRequests);
    // The server counts the prompt tokens it was sent; the report carries them per request.
    JsonNode requests = JSON.readTree(first.out()).get("levels").get(0).get("requests");
    assertThat(requests.get(0).get("prompt_tokens").asInt()).isBetween(2, 40);
  }

  @Test
  void aDurationStopsStartingRequests() throws IOException, InterruptedException {
    server.close();
    server = new QueueingOwlery(20_000_000, 0);

    Run run = Run.of("--server", server.address(), "--prompt-ids", "1", "--concurrency", "2", "--duration", "300ms",
        "--max-new-tokens", "1", "--warmup", "0", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode requests = JSON.readTree(run.out()).get("levels").get(0).get("requests");
    assertThat(requests.size()).isPositive();
    for (JsonNode request : requests) {
      assertThat(request.get("sent_ms").asDouble()).isLessThan(300.0);
    }
  }

  @Test
  void closedLoopLevelsCountEveryRequestAndItsTokens() throws IOException {
    Run run = Run.of("--server", server.address(), "--prompt-ids", "1,2,3", "--concurrency", "1,3",
        "--requests", "6", "--warmup", "2", "--max-new-tokens", "5", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode levels = JSON.readTree(run.out()).get("levels");
    assertThat(levels).hasSize(2);
    assertThat(levels.get(1).get("concurrency").asInt()).isEqualTo(3);
    assertThat(levels.get(1).get("generated_tokens").asInt()).isEqualTo(30);
    // 2 warm-up requests, then 6 per level.
    assertThat(server.received).hasSize(14);
    // Not a terminal: no progress line, only one summary line per level.
    assertThat(run.err()).doesNotContain("\r").hasLineCount(2);
  }

  @Test
  void serverContextComesFromTheMetricsOfTheNodesTheClusterStatusLists() throws IOException {
    JsonNode context;
    Run table;
    try (MetricsEndpoint metrics = new MetricsEndpoint()) {
      server.nodes.add(node("coordinator-0", NodeRole.NODE_ROLE_COORDINATOR, NodeState.NODE_STATE_READY,
          metrics.url("/coordinator")));
      server.nodes.add(node("shard-0", NodeRole.NODE_ROLE_SHARD_WORKER, NodeState.NODE_STATE_READY,
          metrics.url("/shard")));
      server.nodes.add(node("shard-1", NodeRole.NODE_ROLE_SHARD_WORKER, NodeState.NODE_STATE_DOWN,
          metrics.url("/broken")));
      server.nodes.add(node("vision-0", NodeRole.NODE_ROLE_VISION_WORKER, NodeState.NODE_STATE_READY, ""));

      Run run = Run.of("--server", server.address(), "--prompt-ids", "1", "--concurrency", "1,2",
          "--requests", "4", "--max-new-tokens", "2", "--warmup", "0", "--output", "json");
      assertThat(run.exitCode()).as(run.err()).isZero();
      context = JSON.readTree(run.out()).get("levels").get(1).get("server");
      table = Run.of("--server", server.address(), "--prompt-ids", "1", "--concurrency", "1", "--requests", "2",
          "--max-new-tokens", "2", "--warmup", "0", "--metrics-url", metrics.url("/coordinator"));
      Run off = Run.of("--server", server.address(), "--prompt-ids", "1", "--concurrency", "1", "--requests", "2",
          "--max-new-tokens", "2", "--warmup", "0", "--no-server-metrics", "--output", "json");
      assertThat(off.exitCode()).as(off.err()).isZero();
      assertThat(JSON.readTree(off.out()).get("levels").get(0).has("server")).isFalse();
    }

    // The down node and the one without an endpoint are not scraped.
    assertThat(context.get("targets")).hasSize(2);
    assertThat(context.get("failed_scrapes").asInt()).isZero();
    assertThat(context.get("kv_usage_mean").asDouble()).isEqualTo(0.25);
    assertThat(context.get("waiting_max").asDouble()).isEqualTo(2.0);
    assertThat(context.get("running_max").asDouble()).isEqualTo(4.0);
    assertThat(context.get("mean_batch_size").asDouble()).isEqualTo(3.0);
    JsonNode samples = context.get("samples");
    assertThat(samples.size()).isGreaterThanOrEqualTo(2);
    assertThat(context.get("preemptions").asDouble()).isEqualTo(samples.size() - 1);
    assertThat(samples.get(0).get("kv_blocks_used").asDouble()).isEqualTo(MetricsEndpoint.COORDINATOR_KV_USED);
    assertThat(samples.get(0).get("answered").asInt()).isEqualTo(2);
    assertThat(table.exitCode()).as(table.err()).isZero();
    assertThat(table.out()).containsPattern("server, concurrency 1: KV 25.0% mean, 25.0% max; waiting 2.0 mean, 2 max; "
        + "running 4.0 mean, 4 max; \\d+ preemptions; 3.00 sequences per step \\(\\d+ samples of 1 /metrics, 0 failed\\)");
  }

  private static NodeStatus node(String id, NodeRole role, NodeState state, String metricsUrl) {
    return NodeStatus.newBuilder().setNodeId(id).setRole(role).setState(state).setMetricsUrl(metricsUrl).build();
  }

  @Test
  void badOptionsGetOneLine() {
    Run zeroLevel = Run.of("--server", server.address(), "--prompt", "Hi", "--concurrency", "0");
    Run badOutput = Run.of("--server", server.address(), "--prompt", "Hi", "--output", "yaml");

    assertThat(zeroLevel.exitCode()).isEqualTo(2);
    assertThat(zeroLevel.err()).isEqualTo("loadtest: error: --concurrency levels must be >= 1, got 0\n");
    assertThat(badOutput.err()).isEqualTo("loadtest: error: --output must be text or json, got 'yaml'\n");
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--rate", "2", "--concurrency", "4").err())
        .isEqualTo("loadtest: error: give --concurrency (closed loop) or --rate (open loop), not both\n");
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--no-server-metrics", "--metrics-url",
        "http://127.0.0.1:1/metrics").err())
        .isEqualTo("loadtest: error: give --metrics-url or --no-server-metrics, not both\n");
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--report", "/no/such/folder/r.html").err())
        .isEqualTo("loadtest: error: --report /no/such/folder/r.html: the folder /no/such/folder does not exist\n");
    assertThat(Run.of("--prompt", "Hi").err())
        .isEqualTo("loadtest: error: --server HOST:PORT is required: the coordinator to measure\n");
    assertThat(Run.of("--server", server.address()).err())
        .isEqualTo("loadtest: error: give what the requests ask: --prompt, --prompt-ids, --dataset or --synthetic\n");
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--rate", "0").err())
        .isEqualTo("loadtest: error: --rate values must be finite and > 0 requests/s, got 0.0\n");
  }
}
