package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.client.Completion;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery local --standby-shards 1}, the command itself as a process: the standby registers
 * beside the group of 2; a shard worker of the group killed with SIGKILL under 4 concurrent greedy
 * streams is replaced by the standby, every stream completes with its undisturbed tokens, and the
 * command's supervisor starts the killed node again, which then waits as the new standby.
 */
class LocalCommandStandbyTest {

  private static final List<String> PROMPTS = List.of("Once upon a time", "Lily had a", "The dog", "Tom and Sam");

  private static GenerateRequest request(String prompt) {
    return GenerateRequest.newBuilder().setPromptText(prompt).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(80).setTemperature(0).build();
  }

  @Test
  void aKilledShardIsReplacedByTheStandbyAndRestartedAsTheNextStandby(@TempDir Path tmp) throws Exception {
    Path readyFile = tmp.resolve("ready.json");
    List<String> command = LocalCluster.owleryCommand(List.of("-Xmx256m"));
    command.addAll(List.of("local", "--model", Fixtures.stories260k().toString(), "--shards", "2", "--standby-shards",
        "1", "--vision-workers", "0", "--node-heap", "256m", "--ready-file", readyFile.toString()));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("owlery.log").toFile());
    // Every JVM, the nodes included, runs the scalar kernels: a row's logits do not depend on what
    // shares its step (design notes, Batch invariance), so a recomputed stream keeps its tokens.
    builder.environment().put("JAVA_TOOL_OPTIONS", "-D" + KernelsProvider.PROPERTY + "=scalar");
    Process local = builder.start();
    try {
      await().atMost(Duration.ofSeconds(180)).until(() -> Files.exists(readyFile) || !local.isAlive());
      assertThat(local.isAlive()).as(output(tmp)).isTrue();
      String coordinator = new ObjectMapper().readTree(readyFile.toFile()).get("coordinator").asText();
      try (OwleryClient client = OwleryClient.builder().target(coordinator).defaultDeadline(Duration.ofSeconds(90))
          .build()) {
        await().atMost(Duration.ofSeconds(60)).until(() -> shardWorkers(client).size() == 3);
        List<String> members = client.getClusterStatus().getGroups(0).getNodeIdsList();
        String victim = members.get(1);
        String standby = shardWorkers(client).stream().map(NodeStatus::getNodeId).filter(id -> !members.contains(id))
            .findFirst().orElseThrow();
        String victimAddress = RegisteredNodes.address(client, victim);

        List<Completion> solo = PROMPTS.stream().map(prompt -> client.generate(request(prompt))).toList();
        AtomicInteger numStarted = new AtomicInteger();
        List<CompletableFuture<Completion>> streams = new ArrayList<>();
        for (String prompt : PROMPTS) {
          streams.add(stream(client, request(prompt), numStarted));
        }
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(5))
            .until(() -> numStarted.get() == PROMPTS.size());
        ProcessHandle victimProcess = local.descendants().filter(p -> isNode(p, victim)).findFirst().orElseThrow();
        victimProcess.destroyForcibly(); // SIGKILL, as the OOM killer would

        ShardGroupStatus reformed = await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20))
            .until(() -> client.getClusterStatus().getGroups(0), group -> group.getState() == NodeState.NODE_STATE_READY
                && group.getNodeIdsList().equals(List.of(members.get(0), standby)));
        assertThat(reformed.getNodeIdsList()).containsExactly(members.get(0), standby);
        for (int i = 0; i < PROMPTS.size(); i++) {
          Completion completed = streams.get(i).orTimeout(60, TimeUnit.SECONDS).join(); // a failed stream throws
          assertThat(completed.tokenIds()).as(PROMPTS.get(i)).containsExactlyElementsOf(solo.get(i).tokenIds());
        }

        // The supervisor starts the killed node again, on fresh ports; it registers outside the group.
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(100)).until(() -> {
          String now = RegisteredNodes.address(client, victim);
          return !now.isEmpty() && !now.equals(victimAddress);
        });
        assertThat(output(tmp)).contains("owlery local: " + victim
            + " (shard-worker) died with exit status 137 (killed by signal 9) after ");
        assertThat(shardWorkers(client)).extracting(NodeStatus::getNodeId)
            .containsExactlyInAnyOrder(members.get(0), victim, standby);
        assertThat(client.getClusterStatus().getGroupsList()).singleElement()
            .satisfies(group -> assertThat(group.getNodeIdsList()).containsExactly(members.get(0), standby));
        assertThat(local.descendants().filter(p -> isNode(p, victim)).filter(ProcessHandle::isAlive)).hasSize(1);
      }
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; owlery local said:\n" + output(tmp), e);
    } finally {
      local.destroy(); // SIGTERM: its shutdown hook stops every node
      if (!local.waitFor(30, TimeUnit.SECONDS)) {
        local.destroyForcibly();
      }
    }
  }

  /** Streams {@code request}; counts it in {@code numStarted} at its first token. */
  private static CompletableFuture<Completion> stream(OwleryClient client, GenerateRequest request,
      AtomicInteger numStarted) {
    CompletableFuture<Completion> done = new CompletableFuture<>();
    client.generate(request, new GenerationListener() {
      private boolean started;

      @Override
      public void onDelta(GenerateDelta delta) {
        if (!started && delta.getTokenIdsCount() > 0) {
          started = true;
          numStarted.incrementAndGet();
        }
      }

      @Override
      public void onFinish(Completion completion) {
        done.complete(completion);
      }

      @Override
      public void onError(OwleryException error) {
        done.completeExceptionally(error);
      }
    });
    return done;
  }

  private static List<NodeStatus> shardWorkers(OwleryClient client) {
    return client.getClusterStatus().getNodesList().stream()
        .filter(n -> n.getRole() == NodeRole.NODE_ROLE_SHARD_WORKER).toList();
  }

  /**
   * Whether {@code process} is the node {@code nodeId} ({@code owlery <role> --node-id nodeId
   * ...}), read from /proc: {@link ProcessHandle.Info#arguments()} is empty for a command line as
   * long as a node's (its classpath).
   */
  private static boolean isNode(ProcessHandle process, String nodeId) {
    List<String> args;
    try {
      args = List.of(Files.readString(Path.of("/proc", String.valueOf(process.pid()), "cmdline")).split("\0"));
    } catch (IOException e) {
      return false; // gone
    }
    int at = args.indexOf("--node-id");
    return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(nodeId);
  }

  private static String output(Path dir) throws IOException {
    return Files.readString(dir.resolve("owlery.log"));
  }
}
