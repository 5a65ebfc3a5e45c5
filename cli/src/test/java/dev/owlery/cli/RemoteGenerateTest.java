package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.client.OwleryClient;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.CoordinatorNode;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.shard.node.ShardWorkerNode;
import dev.owlery.shard.node.ShardWorkerNodeConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code owlery generate --server} against a real coordinator and shard worker serving stories260k
 * in this JVM: the JSON, the finish reasons, the limits and the messages are those of the
 * in-process run.
 */
class RemoteGenerateTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static Path model;
  private static CoordinatorNode coordinator;
  private static ShardWorkerNode shard;

  @BeforeAll
  static void startCluster() {
    model = Fixtures.stories260k();
    String clusterName = "owlery-cli-" + UUID.randomUUID();
    int coordinatorPort = freePort();
    int shardPort = freePort();
    String seed = "127.0.0.1:" + coordinatorPort;
    coordinator = CoordinatorNode.start(CoordinatorConfig.of("coordinator-0", model,
        MembershipConfig.of(clusterName, "127.0.0.1", coordinatorPort, List.of(seed)), GrpcServerConfig.loopback(),
        "127.0.0.1", 1));
    shard = ShardWorkerNode.start(ShardWorkerNodeConfig.of("127.0.0.1", 0, 0,
        MembershipConfig.of(clusterName, "127.0.0.1", shardPort, List.of(seed, "127.0.0.1:" + shardPort)))
        .withNodeId("shard-0").withComputeThreads(1));
    try (OwleryClient client = OwleryClient.builder().target(coordinator.grpcAddress()).build()) {
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(50)).until(
          () -> client.getClusterStatus().getGroupsList().stream()
              .anyMatch(group -> group.getState() == NodeState.NODE_STATE_READY));
    }
  }

  @AfterAll
  static void stopCluster() {
    if (shard != null) {
      shard.close();
    }
    if (coordinator != null) {
      coordinator.close();
    }
  }

  @Test
  void finishReasonsHaveTheSameNamesInProcessAndThroughTheServer() throws IOException {
    // stories260k holds 512 positions: a 508-id prompt reaches them after 4 new tokens.
    String longPrompt = IntStream.range(0, 508).mapToObj(i -> String.valueOf(i == 0 ? 1 : 300 + i % 100))
        .collect(Collectors.joining(","));
    record Case(String expected, String[] args) {}
    List<Case> cases = List.of(
        new Case("max_new_tokens", new String[] {"--prompt", "Once upon a time", "--max-new-tokens", "8"}),
        new Case("max_positions", new String[] {"--prompt-ids", longPrompt, "--max-new-tokens", "8"}));
    // stories260k never ends with its EOS; DemoCommandTest shows stop_token on both paths with the demo model.
    for (Case c : cases) {
      JsonNode inProcess = json(generate(concat(new String[] {"--model", model.toString(), "--template", "none",
          "--output", "json"}, c.args())));
      JsonNode remote = json(generate(concat(new String[] {"--server", coordinator.grpcAddress(), "--template", "none",
          "--output", "json"}, c.args())));

      assertThat(inProcess.get("finish_reason").asText()).as(c.expected()).isEqualTo(c.expected());
      assertThat(remote.get("finish_reason").asText()).as(c.expected()).isEqualTo(c.expected());
      assertThat(remote.get("token_ids")).isEqualTo(inProcess.get("token_ids"));
    }
  }

  @Test
  void everySpellingOfNanGetsTheSameMessageInProcessAndThroughTheServer() {
    String message = "temperature must be a finite value >= 0 (0 = greedy), got NaN";
    for (String nan : List.of("nan", "NaN", "NAN")) {
      CliRun inProcess = generate("--model", model.toString(), "--prompt", "Hi", "--temperature", nan);
      CliRun remote = generate("--server", coordinator.grpcAddress(), "--prompt", "Hi", "--temperature", nan);

      assertThat(inProcess.exitCode()).isEqualTo(2);
      assertThat(inProcess.err()).isEqualTo("owlery: error: " + message + "\n");
      assertThat(remote.exitCode()).isEqualTo(1);
      assertThat(remote.err()).isEqualTo("owlery: the server answered INVALID_ARGUMENT: " + message + "\n");
    }
  }

  @Test
  void theLimitsAndTheirMessagesAreTheServers() {
    String tooMany = "max_new_tokens must be in 1..512 (max_positions of model hf). Given: 600";
    CliRun inProcess = generate("--model", model.toString(), "--prompt", "Hi", "--max-new-tokens", "600");
    CliRun remote = generate("--server", coordinator.grpcAddress(), "--prompt", "Hi", "--max-new-tokens", "600");
    CliRun logprobs = generate("--model", model.toString(), "--prompt", "Hi", "--output", "json", "--logprobs", "21");

    assertThat(inProcess.err()).isEqualTo("owlery: error: " + tooMany + "\n");
    assertThat(remote.err()).isEqualTo("owlery: the server answered INVALID_ARGUMENT: " + tooMany + "\n");
    assertThat(logprobs.err()).isEqualTo("owlery: error: num_top_logprobs must be in 0..20. Given: 21\n");
  }

  @Test
  void aPassedDeadlineIsSaidWithTheTokensReceived() {
    CliRun run = generate("--server", coordinator.grpcAddress(), "--prompt", "Once upon a time",
        "--max-new-tokens", "400", "--timeout", "1ms");

    assertThat(run.exitCode()).isEqualTo(1);
    assertThat(run.err()).matches("owlery: error: deadline of 0\\.001 s exceeded after \\d+ tokens?\n");
  }

  @Test
  void nothingListeningIsSaidAsAConnectionRefused() {
    int port = freePort();

    CliRun run = generate("--server", "127.0.0.1:" + port, "--prompt", "Hi");

    assertThat(run.exitCode()).isEqualTo(1);
    assertThat(run.err()).isEqualTo("owlery: error: cannot connect to 127.0.0.1:%d (connection refused)\n"
        .formatted(port));
  }

  private static CliRun generate(String... args) {
    return CliRun.of(concat(new String[] {"generate"}, args));
  }

  private static JsonNode json(CliRun run) throws IOException {
    assertThat(run.exitCode()).as(run.err()).isZero();
    return JSON.readTree(run.out());
  }

  private static String[] concat(String[] a, String... b) {
    List<String> all = new ArrayList<>(Arrays.asList(a));
    all.addAll(Arrays.asList(b));
    return all.toArray(String[]::new);
  }

  /** A loopback port nothing listens on (any more). */
  private static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
