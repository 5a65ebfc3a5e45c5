package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code owlery status} and {@code owlery models} against a whole cluster on loopback (tiny-owl2:
 * coordinator, vision worker, a group of two real shard workers running one sequence at a time),
 * as tables and as JSON.
 */
class ClusterQueryCommandsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** 14 blocks of 16 positions. */
  private static final int KV_BLOCKS = 14;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void statusAndModelsShowTheClusterAsTablesAndJson() {
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.tinyOwl2(), ShardWorkerLauncher.real(), 2,
        config -> config.withPlacement(config.placement().withBatch(1, 64).withKvCache(16, KV_BLOCKS * 16L, 0)));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    String server = owlery.coordinator().grpcAddress();

    statusShowsAnIdleGroupItsRanksAndEveryNode(owlery, server);
    statusShowsTheQueueAndTheBlocksOfABusyGroup(owlery, server);
    modelsListsTheServedModel(server);
    modelsAsksTheNextCoordinatorWhenTheFirstIsDown(server);
  }

  private static void statusShowsAnIdleGroupItsRanksAndEveryNode(LoopbackOwlery owlery, String server) {
    CliRun table = CliRun.of("status", "--server", server);

    assertThat(table.exitCode()).as(table.err()).isZero();
    List<String> lines = table.out().lines().toList();
    assertThat(lines.getFirst().split(" +")).containsExactly("GROUP", "MODEL", "STATE", "RANKS", "KV_BLOCKS_USED",
        "KV_BLOCKS_FREE", "WAITING", "RUNNING");
    assertThat(lines.get(1).split(" +"))
        .containsExactly("group-0", "tiny-owl2", "READY", "0:shard-0", "1:shard-1", "0", "14", "0", "0");
    List<NodeStatus> nodes = owlery.client().getClusterStatus().getNodesList();
    assertThat(nodes).hasSize(4);
    for (NodeStatus node : nodes) {
      String expected = switch (node.getNodeId()) {
        case "coordinator-0" -> "coordinator-0 coordinator READY " + node.getGrpcAddress() + " - - - "
            + node.getMetricsUrl();
        case "vision-0" -> "vision-0 vision-worker READY " + node.getGrpcAddress() + " - - - " + node.getMetricsUrl();
        case "shard-0", "shard-1" -> node.getNodeId() + " shard-worker READY " + node.getGrpcAddress() + " group-0 "
            + node.getNodeId().substring("shard-".length()) + " - " + node.getMetricsUrl();
        default -> throw new AssertionError("unexpected node " + node);
      };
      assertThat(lines).anyMatch(line -> String.join(" ", line.split(" +")).equals(expected));
    }
    assertThat(lines.getLast()).isEqualTo("scheduler: 0 waiting, 0 running");

    JsonNode json = statusJson(server);
    JsonNode group = json.get("groups").get(0);
    assertThat(group.get("group_id").asText()).isEqualTo("group-0");
    assertThat(group.get("state").asText()).isEqualTo("READY");
    assertThat(group.get("world_size").asInt()).isEqualTo(2);
    assertThat(group.get("ranks").toString())
        .isEqualTo("[{\"rank\":0,\"node_id\":\"shard-0\"},{\"rank\":1,\"node_id\":\"shard-1\"}]");
    assertThat(group.get("kv_blocks").asInt()).isEqualTo(KV_BLOCKS);
    assertThat(group.get("kv_blocks_free").asInt()).isEqualTo(KV_BLOCKS);
    assertThat(json.get("nodes")).hasSize(4);
    JsonNode vision = json.get("nodes").get(3);
    assertThat(vision.get("node_id").asText()).isEqualTo("vision-0");
    assertThat(vision.get("role").asText()).isEqualTo("vision-worker");
    assertThat(vision.get("state").asText()).isEqualTo("READY");
    assertThat(vision.get("group_id").isNull()).isTrue();
    assertThat(json.get("nodes").get(1).get("rank").asInt()).isZero();
  }

  /** Three long requests on a group that runs one at a time: one runs and holds blocks, two wait. */
  private static void statusShowsTheQueueAndTheBlocksOfABusyGroup(LoopbackOwlery owlery, String server) {
    GenerateRequest longRequest = GenerateRequest.newBuilder().setPromptText("USER: Hello. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setTemperature(0).setMaxNewTokens(200).build();
    List<CompletableFuture<Completion>> calls =
        IntStream.range(0, 3).mapToObj(i -> owlery.client().generateAsync(longRequest)).toList();

    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(20)).untilAsserted(() -> {
      JsonNode group = statusJson(server).get("groups").get(0);
      assertThat(group.get("running").asInt()).isEqualTo(1);
      assertThat(group.get("waiting").asInt()).isEqualTo(2);
      assertThat(group.get("kv_blocks_used").asInt()).isPositive()
          .isEqualTo(KV_BLOCKS - group.get("kv_blocks_free").asInt());
    });
    calls.forEach(call -> call.orTimeout(60, TimeUnit.SECONDS).join());
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      JsonNode json = statusJson(server);
      assertThat(json.get("groups").get(0).get("kv_blocks_free").asInt()).isEqualTo(KV_BLOCKS);
      assertThat(json.get("scheduler").toString()).isEqualTo("{\"waiting\":0,\"running\":0}");
    });
  }

  private static void modelsAsksTheNextCoordinatorWhenTheFirstIsDown(String server) {
    String down;
    try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      down = "127.0.0.1:" + socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    CliRun table = CliRun.of("models", "--server", down + "," + server);

    assertThat(table.exitCode()).as(table.err()).isZero();
    assertThat(table.out()).contains("tiny-owl2");
  }

  private static void modelsListsTheServedModel(String server) {
    CliRun table = CliRun.of("models", "--server", server);

    assertThat(table.exitCode()).as(table.err()).isZero();
    assertThat(table.out().lines().map(line -> List.of(line.split(" +"))).toList()).containsExactly(
        List.of("NAME", "TYPE", "VOCAB", "MAX_POSITIONS", "IMAGES", "IMAGE_TOKENS", "READY_GROUPS"),
        List.of("tiny-owl2", "mplug_owl2", "32000", "256", "yes", "9", "1"));

    CliRun json = CliRun.of("models", "--server", server, "--output", "json");
    assertThat(json.exitCode()).as(json.err()).isZero();
    assertThat(parse(json.out()).toString()).isEqualTo("{\"models\":[{\"name\":\"tiny-owl2\",\"model_type\":"
        + "\"mplug_owl2\",\"vocab_size\":32000,\"max_positions\":256,\"supports_images\":true,\"num_image_tokens\":9,"
        + "\"num_ready_groups\":1}]}");
  }

  @Test
  void anUnknownOutputFormatIsRefusedInOneSentence() {
    CliRun run = CliRun.of("status", "--server", "127.0.0.1:1", "--output", "xml");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).isEqualTo("owlery: error: --output must be text or json, got 'xml'\n");
  }

  private static JsonNode statusJson(String server) {
    CliRun run = CliRun.of("status", "--server", server, "--output", "json");
    assertThat(run.exitCode()).as(run.err()).isZero();
    return parse(run.out());
  }

  private static JsonNode parse(String json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException("not JSON: " + json, e);
    }
  }
}
