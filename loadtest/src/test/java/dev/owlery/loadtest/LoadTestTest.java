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
import com.google.protobuf.ByteString;
import dev.owlery.proto.v1.Image;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.io.TempDir;
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
    assertThat(context.get("image_cache_hits").asDouble()).isEqualTo(3 * (samples.size() - 1));
    assertThat(context.get("image_cache_misses").asDouble()).isEqualTo(samples.size() - 1);
    assertThat(context.get("coordinator_share_mean").asDouble()).isEqualTo(0.125);
    assertThat(samples.get(0).get("kv_blocks_used").asDouble()).isEqualTo(MetricsEndpoint.COORDINATOR_KV_USED);
    assertThat(samples.get(0).get("answered").asInt()).isEqualTo(2);
    assertThat(table.exitCode()).as(table.err()).isZero();
    assertThat(table.out()).containsPattern("server, concurrency 1: KV 25.0% mean, 25.0% max; waiting 2.0 mean, 2 max; "
        + "running 4.0 mean, 4 max; \\d+ preemptions; 3.00 sequences per step \\(\\d+ samples of 1 /metrics, 0 failed\\); "
        + "image cache \\d+ hits, \\d+ misses; coordinator 12.5% of a step");
  }

  @Test
  void repeatedSyntheticImagesAreTheSamePicturesAndDistinctOnesNeverRecur() throws IOException {
    String[] common = {"--server", server.address(), "--synthetic", "--synthetic-images", "2", "--image-size", "40x30",
        "--input-tokens", "fixed:5", "--concurrency", "1,2", "--requests", "3", "--warmup", "1", "--max-new-tokens", "1",
        "--output", "json"};

    Run repeated = Run.of(common);
    List<GenerateRequest> repeatedRequests = List.copyOf(server.received);
    server.received.clear();
    Run distinct = Run.of(concat(common, "--distinct-images"));

    assertThat(repeated.exitCode()).as(repeated.err()).isZero();
    assertThat(distinct.exitCode()).as(distinct.err()).isZero();
    // 1 warm-up request, then 3 per level; 2 pictures each.
    assertThat(repeatedRequests).hasSize(7);
    for (GenerateRequest r : repeatedRequests) {
      assertThat(r.getImagesCount()).isEqualTo(2);
      // BOS, a placeholder per picture, then the rest of the 5 text tokens.
      List<Integer> ids = r.getPromptTokenIds().getTokenIdsList();
      assertThat(ids).hasSize(7);
      assertThat(ids.subList(0, 3)).containsExactly(Workload.BOS_ID, Workload.IMAGE_PLACEHOLDER_ID,
          Workload.IMAGE_PLACEHOLDER_ID);
    }
    assertThat(pictures(repeatedRequests)).hasSize(14);
    assertThat(Set.copyOf(pictures(repeatedRequests))).hasSize(2);
    assertThat(server.received).hasSize(7);
    assertThat(Set.copyOf(pictures(server.received))).hasSize(14);
    BufferedImage picture = ImageIO.read(pictures(server.received).getFirst().newInput());
    assertThat(picture.getWidth()).isEqualTo(40);
    assertThat(picture.getHeight()).isEqualTo(30);
    // The server reports 65 image tokens per picture; the report carries them per request.
    assertThat(JSON.readTree(distinct.out()).get("levels").get(1).get("requests").get(0).get("image_tokens").asInt())
        .isEqualTo(130);
  }

  @Test
  void anImageFileGoesWithEverySyntheticRequest(@TempDir Path tmp) throws IOException {
    byte[] png = new SyntheticImages(1, 8, 8, SyntheticImages.Mode.REPEATED, 3).of(1, 0).getFirst().getData()
        .toByteArray();
    Path file = Files.write(tmp.resolve("owl.png"), png);

    Run run = Run.of("--server", server.address(), "--synthetic", "--image", file.toString(), "--input-tokens",
        "fixed:4", "--concurrency", "2", "--requests", "4", "--warmup", "0", "--max-new-tokens", "1");

    assertThat(run.exitCode()).as(run.err()).isZero();
    assertThat(server.received).hasSize(4);
    for (GenerateRequest r : server.received) {
      assertThat(pictures(List.of(r))).containsExactly(ByteString.copyFrom(png));
      assertThat(r.getPromptTokenIds().getTokenIdsList().subList(0, 2))
          .containsExactly(Workload.BOS_ID, Workload.IMAGE_PLACEHOLDER_ID);
    }
  }

  @Test
  void aJsonlDatasetSendsItsImagesAndTakesMaxTokensFromTheLineOrItsExpectedOutput(@TempDir Path tmp)
      throws IOException {
    Files.createDirectories(tmp.resolve("pics"));
    byte[] owl = {(byte) 0x89, 'P', 'N', 'G', 1};
    byte[] cat = {(byte) 0x89, 'P', 'N', 'G', 2};
    Files.write(tmp.resolve("pics/owl.png"), owl);
    Files.write(tmp.resolve("pics/cat.png"), cat);
    Path dataset = Files.writeString(tmp.resolve("requests.jsonl"), """
        {"prompt_ids": [1, -200, 5], "images": ["pics/owl.png"], "max_tokens": 3}
        {"prompt": "<|image|><|image|> Which is the owl?", "images": ["pics/cat.png", "pics/owl.png"],         "expected_output": "the first one, of course"}
        {"prompt": "Hoot", "expected_output": "ignored", "max_tokens": 2}
        """);

    Run run = Run.of("--server", server.address(), "--dataset", dataset.toString(), "--concurrency", "1",
        "--requests", "3", "--warmup", "0", "--max-new-tokens", "9", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    assertThat(server.received).hasSize(3);
    GenerateRequest ids = only(server.received, r -> r.hasPromptTokenIds());
    assertThat(ids.getPromptTokenIds().getTokenIdsList()).containsExactly(1, -200, 5);
    assertThat(ids.getImagesList()).extracting(i -> i.getData().toByteArray()).containsExactly(owl);
    assertThat(ids.getMaxNewTokens()).isEqualTo(3);
    GenerateRequest text = only(server.received, r -> r.getPromptText().startsWith("<|image|>"));
    assertThat(text.getImagesList()).extracting(i -> i.getData().toByteArray()).containsExactly(cat, owl);
    // "the first one, of course": 5 tokens by the server's tokenizer (its BOS not counted).
    assertThat(text.getMaxNewTokens()).isEqualTo(5);
    assertThat(only(server.received, r -> r.getPromptText().equals("Hoot")).getMaxNewTokens()).isEqualTo(2);
    assertThat(JSON.readTree(run.out()).get("levels").get(0).get("generated_tokens").asInt()).isEqualTo(3 + 5 + 2);
  }

  private static GenerateRequest only(List<GenerateRequest> requests, Predicate<GenerateRequest> which) {
    List<GenerateRequest> matching = requests.stream().filter(which).toList();
    assertThat(matching).hasSize(1);
    return matching.getFirst();
  }

  /** Every picture of {@code requests}, in order. */
  private static List<ByteString> pictures(List<GenerateRequest> requests) {
    return requests.stream().flatMap(r -> r.getImagesList().stream()).map(Image::getData).toList();
  }

  private static String[] concat(String[] args, String... more) {
    return Stream.concat(Arrays.stream(args), Arrays.stream(more)).toArray(String[]::new);
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
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--synthetic-images", "1").err())
        .isEqualTo("loadtest: error: --synthetic-images needs --synthetic (its prompts get one image placeholder per "
            + "picture)\n");
    assertThat(Run.of("--server", server.address(), "--synthetic", "--synthetic-images", "1", "--image-size", "448")
        .err()).isEqualTo("loadtest: error: --image-size must be WIDTHxHEIGHT in pixels, both >= 1, e.g. 448x448, "
            + "got '448'\n");
    assertThat(Run.of("--server", server.address(), "--prompt", "Hi", "--rate", "0").err())
        .isEqualTo("loadtest: error: --rate values must be finite and > 0 requests/s, got 0.0\n");
  }
}
