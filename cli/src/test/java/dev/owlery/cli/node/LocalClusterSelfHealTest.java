package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * Issue 13 acceptance (a) and (b) with real processes: a stories260k cluster of 2 shard workers
 * serving 8 concurrent greedy streams loses a shard mid-generation, and no request fails: every
 * stream equals its run alone (no token duplicated, skipped or changed), and every live node's KV
 * blocks are back to 0 afterwards. (a) a shard worker drained with SIGTERM leaves its rank to the
 * standby, and then the coordinator drains, each exiting 0 (a SIGKILLed shard replaced by a standby:
 * LocalCommandStandbyTest, and NetworkFaultTest in network namespaces); (b) without a standby, the
 * {@code owlery local} supervisor restarts a SIGKILLed shard. And a rolling restart of the shard
 * workers under {@code owlery local}'s supervisor, one after the other under continuous load, loses
 * no request either.
 */
class LocalClusterSelfHealTest {

  private static final List<String> PROMPTS = List.of("Once upon a time", "Lily had a", "The dog", "One day, a little",
      "Tom and Sam", "The sun was", "A big red", "Mom said");
  /** Scalar kernels: a row's logits do not depend on what shares its step (design notes, Batch invariance). */
  private static final List<String> JVM = TestNodeJvm.with("-Xmx256m", "-D" + KernelsProvider.PROPERTY + "=scalar");

  private static GenerateRequest request(String prompt) {
    return GenerateRequest.newBuilder().setPromptText(prompt).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(80).setTemperature(0).build();
  }

  /** One stream: its tokens and when each delta came. */
  private record Stream(List<Integer> tokenIds, List<Long> deltaNanos, CompletableFuture<Completion> done) {

    static Stream start(OwleryClient client, GenerateRequest request) {
      Stream stream = new Stream(new CopyOnWriteArrayList<>(), new CopyOnWriteArrayList<>(), new CompletableFuture<>());
      client.generate(request, new GenerationListener() {
        @Override
        public void onDelta(GenerateDelta delta) {
          stream.deltaNanos.add(System.nanoTime());
          stream.tokenIds.addAll(delta.getTokenIdsList());
        }

        @Override
        public void onFinish(Completion completion) {
          stream.done.complete(completion);
        }

        @Override
        public void onError(OwleryException error) {
          stream.done.completeExceptionally(error);
        }
      });
      return stream;
    }

    long longestGapNanos() {
      long longest = 0;
      for (int i = 1; i < deltaNanos.size(); i++) {
        longest = Math.max(longest, deltaNanos.get(i) - deltaNanos.get(i - 1));
      }
      return longest;
    }
  }

  /** What a kill did to the streams, for the report. */
  private record Outcome(long longestPauseMs, long readyAgainMs) {}

  /**
   * Runs every prompt alone, then all at once; once each stream has its first token, {@code kill}s
   * {@code victim} and waits for group-0 to be READY again with {@code readyAgain} ranks. Asserts that every
   * stream completes with exactly its solo tokens, that some came after the kill, that the killed
   * process's record leaves the registry and that every live node's KV blocks are back to 0.
   */
  private static Outcome killMidGeneration(OwleryClient client, String victim, Runnable kill, List<String> readyAgain) {
    List<Completion> solo = PROMPTS.stream().map(prompt -> client.generate(request(prompt))).toList();

    List<Stream> streams = PROMPTS.stream().map(prompt -> Stream.start(client, request(prompt))).toList();
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(5))
        .until(() -> streams.stream().allMatch(stream -> !stream.tokenIds().isEmpty()));
    String lostAddress = RegisteredNodes.address(client, victim);
    kill.run();
    long killedAt = System.nanoTime();
    // READY again with readyAgain, every one of them registered and another process than the victim
    ShardGroupStatus ready = await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20))
        .until(() -> client.getClusterStatus().getGroups(0),
            group -> group.getState() == NodeState.NODE_STATE_READY && group.getNodeIdsList().equals(readyAgain)
                && readyAgain.stream().map(nodeId -> RegisteredNodes.address(client, nodeId))
                    .noneMatch(address -> address.isEmpty() || address.equals(lostAddress)));
    long readyAgainMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);

    List<Completion> completed = new ArrayList<>();
    for (Stream stream : streams) {
      completed.add(stream.done().orTimeout(60, TimeUnit.SECONDS).join()); // a failed stream throws here
    }
    for (int i = 0; i < PROMPTS.size(); i++) {
      assertThat(completed.get(i).tokenIds()).as(PROMPTS.get(i)).containsExactlyElementsOf(solo.get(i).tokenIds());
      assertThat(streams.get(i).tokenIds()).as(PROMPTS.get(i)).containsExactlyElementsOf(solo.get(i).tokenIds());
      assertThat(completed.get(i).text()).isEqualTo(solo.get(i).text());
    }
    assertThat(streams.stream().flatMap(stream -> stream.deltaNanos().stream()).anyMatch(at -> at > killedAt))
        .as("some tokens came after the kill").isTrue();
    assertThat(ready.getNodeIdsList()).isEqualTo(readyAgain);
    // The killed process stays listed until Hazelcast removes its member (max-no-heartbeat after the kill);
    // its record must go, and only then is every listed node a live one to scrape.
    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
      List<NodeStatus> nodes = client.getClusterStatus().getNodesList();
      assertThat(nodes).as("the killed process's record").noneMatch(node -> node.getGrpcAddress().equals(lostAddress));
      for (NodeStatus node : nodes) {
        if (node.getRole() != NodeRole.NODE_ROLE_VISION_WORKER) {
          assertThat(PrometheusScrape.of(node.getMetricsUrl()).sum("owlery_kv_blocks_used")).as(node.getNodeId())
              .isZero();
        }
      }
    });
    long longestPauseMs = TimeUnit.NANOSECONDS.toMillis(streams.stream().mapToLong(Stream::longestGapNanos).max()
        .orElseThrow());
    System.out.printf("LocalClusterSelfHealTest: longest pause of a stream %d ms; group READY again %d ms after the "
        + "kill (%s)%n", longestPauseMs, readyAgainMs, readyAgain);
    return new Outcome(longestPauseMs, readyAgainMs);
  }

  @Test
  void sigtermDrainsAShardWorkerAndThenTheCoordinatorWithoutLosingARequest() throws Exception {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 2, 0, 0, new PrintWriter(log, true), JVM);
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(90)).build()) {
      cluster.startShardWorker();
      cluster.awaitReady(0, Duration.ofSeconds(120));
      await().atMost(Duration.ofSeconds(60)).until(() -> client.getClusterStatus().getNodesList().stream()
          .filter(n -> n.getRole() == NodeRole.NODE_ROLE_SHARD_WORKER).count() == 3);
      List<String> members = client.getClusterStatus().getGroups(0).getNodeIdsList();
      LocalCluster.NodeProcess drained = cluster.liveNode(members.get(1));
      String standby = List.of("shard-0", "shard-1", "shard-2").stream().filter(id -> !members.contains(id))
          .findFirst().orElseThrow();

      killMidGeneration(client, drained.nodeId(), () -> drained.process().destroy(), List.of(members.get(0), standby));
      assertThat(drained.process().waitFor(60, TimeUnit.SECONDS)).isTrue();
      assertThat(drained.process().exitValue()).isZero();

      // The coordinator: streams under way finish, then it exits 0.
      List<Completion> solo = PROMPTS.stream().map(prompt -> client.generate(request(prompt))).toList();
      List<Stream> streams = PROMPTS.stream().map(prompt -> Stream.start(client, request(prompt))).toList();
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(5))
          .until(() -> streams.stream().allMatch(stream -> !stream.tokenIds().isEmpty()));
      LocalCluster.NodeProcess coordinator = cluster.nodes().stream().filter(n -> n.role().equals("coordinator"))
          .findFirst().orElseThrow();
      coordinator.process().destroy();
      for (int i = 0; i < PROMPTS.size(); i++) {
        assertThat(streams.get(i).done().orTimeout(60, TimeUnit.SECONDS).join().tokenIds()).as(PROMPTS.get(i))
            .containsExactlyElementsOf(solo.get(i).tokenIds());
      }
      assertThat(coordinator.process().waitFor(60, TimeUnit.SECONDS)).isTrue();
      assertThat(coordinator.process().exitValue()).isZero();
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }

  @Test
  void aRollingRestartOfTheShardWorkersUnderLoadLosesNoRequest() throws Exception {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 2, 0, 0, new PrintWriter(log, true), JVM);
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(90)).build()) {
      cluster.awaitReady(0, Duration.ofSeconds(120));
      cluster.supervise();
      List<Completion> solo = PROMPTS.stream().map(prompt -> client.generate(request(prompt))).toList();
      AtomicBoolean loading = new AtomicBoolean(true);
      List<CompletableFuture<Integer>> clients = new ArrayList<>();
      for (int c = 0; c < 4; c++) {
        int first = c;
        clients.add(CompletableFuture.supplyAsync(() -> {
          int numCompleted = 0;
          for (int i = first; loading.get(); i = (i + 1) % PROMPTS.size(), numCompleted++) {
            assertThat(client.generate(request(PROMPTS.get(i))).tokenIds()).as(PROMPTS.get(i))
                .containsExactlyElementsOf(solo.get(i).tokenIds()); // a failed request throws here
          }
          return numCompleted;
        }));
      }

      for (String nodeId : List.of("shard-0", "shard-1")) {
        String before = RegisteredNodes.address(client, nodeId);
        LocalCluster.NodeProcess stopping = cluster.liveNode(nodeId);
        stopping.process().destroy(); // SIGTERM: it drains, exits 0, and the supervisor starts it again
        assertThat(stopping.process().waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(stopping.process().exitValue()).isZero();
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(50)).until(() -> {
          ShardGroupStatus group = client.getClusterStatus().getGroups(0);
          String now = RegisteredNodes.address(client, nodeId);
          return group.getState() == NodeState.NODE_STATE_READY && !now.isEmpty() && !now.equals(before);
        });
      }
      loading.set(false);

      for (CompletableFuture<Integer> loader : clients) {
        // each had a request in flight across both restarts, completed with its solo tokens
        assertThat(loader.get(120, TimeUnit.SECONDS)).isPositive();
      }
      assertThat(log.toString()).contains("owlery local: shard-0 (shard-worker) died with exit status 0")
          .contains("owlery local: shard-1 (shard-worker) died with exit status 0");
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }

  @Test
  void withoutAStandbyTheSupervisorRestartsTheKilledShardAndEveryRequestCompletes() {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 2, 0, 0, new PrintWriter(log, true), JVM);
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(90)).build()) {
      cluster.awaitReady(0, Duration.ofSeconds(120));
      cluster.supervise();

      // SIGKILL from outside, as the OOM killer would: not LocalCluster.kill, which means "on purpose".
      killMidGeneration(client, "shard-1", () -> cluster.liveNode("shard-1").process().destroyForcibly(),
          List.of("shard-0", "shard-1"));

      assertThat(log.toString())
          .contains("owlery local: shard-1 (shard-worker) died with exit status 137 (killed by signal 9) after ")
          .contains("; restarting it in 500 ms (restart 1)");
      assertThat(cluster.nodes().stream().filter(n -> n.nodeId().equals("shard-1")).toList())
          .singleElement().satisfies(n -> assertThat(n.process().isAlive()).isTrue());
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }
}
