package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.OwleryClient;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Issue 13, part 2 acceptance with real processes: two coordinators over stories260k shard workers
 * in groups of one, each driving one group. Under load through the follower, the leader coordinator
 * is killed with SIGKILL: no request through the follower fails or changes, the follower takes
 * placement over and re-forms the leader's group for itself, a client given both addresses goes on
 * through the follower, and a shard worker started afterwards forms a new group. And a rolling
 * restart (SIGTERM, drain, supervised restart) of both shard workers and then the leader, under load
 * from a client given both coordinators, loses no request.
 */
class LocalClusterCoordinatorFailoverTest {

  private static final List<String> PROMPTS = List.of("Once upon a time", "Lily had a", "The dog", "Tom and Sam");
  /** Scalar kernels: a row's logits do not depend on what shares its step (design notes, Batch invariance). */
  private static final List<String> JVM = TestNodeJvm.with("-Xmx256m", "-D" + KernelsProvider.PROPERTY + "=scalar");

  private static GenerateRequest request(String prompt) {
    return GenerateRequest.newBuilder().setPromptText(prompt).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(40).setTemperature(0).build();
  }

  /** READY groups by id, each with the coordinator that drives it. */
  private static Map<String, String> readyDrivers(OwleryClient client) {
    return client.getClusterStatus().getGroupsList().stream().filter(g -> g.getState() == NodeState.NODE_STATE_READY)
        .collect(Collectors.toMap(ShardGroupStatus::getGroupId, ShardGroupStatus::getCoordinatorNodeId));
  }

  @Test
  void killingTheLeaderLosesNoRequestThroughTheOtherCoordinatorWhichTakesPlacementOver() throws Exception {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 2, 0, 0, new PrintWriter(log, true), JVM,
        List.of("--group-size", "1", "--max-groups", "3"))) {
      LocalCluster.NodeProcess leader = cluster.nodes().stream().filter(n -> n.role().equals("coordinator"))
          .findFirst().orElseThrow();
      LocalCluster.NodeProcess follower = cluster.startCoordinator();
      String followerAddress = "127.0.0.1:" + follower.grpcPort();
      try (OwleryClient viaFollower = OwleryClient.builder().target(followerAddress)
              .defaultDeadline(Duration.ofSeconds(90)).build();
          OwleryClient viaBoth = OwleryClient.builder().targets(List.of(cluster.coordinatorAddress(), followerAddress))
              .defaultDeadline(Duration.ofSeconds(90)).build()) {
        // Each coordinator drives one of the two groups.
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(200)).ignoreExceptions()
            .until(() -> readyDrivers(viaFollower).values().stream().sorted().toList(),
                drivers -> drivers.equals(List.of(leader.nodeId(), follower.nodeId())));
        List<Completion> solo = PROMPTS.stream().map(prompt -> viaFollower.generate(request(prompt))).toList();

        AtomicBoolean loading = new AtomicBoolean(true);
        AtomicInteger completed = new AtomicInteger();
        List<CompletableFuture<Void>> loaders = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
          int first = c;
          loaders.add(CompletableFuture.runAsync(() -> {
            for (int i = first; loading.get(); i = (i + 1) % PROMPTS.size()) {
              assertThat(viaFollower.generate(request(PROMPTS.get(i))).tokenIds()).as(PROMPTS.get(i))
                  .containsExactlyElementsOf(solo.get(i).tokenIds()); // a failed request throws here
              completed.incrementAndGet();
            }
          }));
        }
        await().atMost(Duration.ofSeconds(60)).until(() -> completed.get() >= 4);

        cluster.kill(leader); // SIGKILL
        long killedAt = System.nanoTime();
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20)).ignoreExceptions()
            .until(() -> readyDrivers(viaFollower),
                drivers -> drivers.size() == 2 && drivers.values().stream().allMatch(follower.nodeId()::equals));
        long reformedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);
        int atTakeover = completed.get();
        await().atMost(Duration.ofSeconds(60)).until(() -> completed.get() >= atTakeover + 4);

        // A client given both addresses skips the dead leader.
        assertThat(viaBoth.generate(request(PROMPTS.get(0))).tokenIds())
            .containsExactlyElementsOf(solo.get(0).tokenIds());
        // A new group forms under the new leader.
        LocalCluster.NodeProcess added = cluster.startShardWorker();
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(100)).ignoreExceptions()
            .until(() -> viaFollower.getClusterStatus().getGroupsList().stream().anyMatch(g ->
                g.getState() == NodeState.NODE_STATE_READY && g.getNodeIdsList().equals(List.of(added.nodeId()))));

        loading.set(false);
        for (CompletableFuture<Void> loader : loaders) {
          loader.get(120, TimeUnit.SECONDS); // throws if any request through the follower failed
        }
        assertThat(log.toString()).contains(follower.nodeId() + " leads placement, epoch 2");
        System.out.printf("LocalClusterCoordinatorFailoverTest: leader SIGKILLed; both groups READY under %s %d ms "
            + "later; %d requests through it completed, none failed%n", follower.nodeId(), reformedMs, completed.get());
      }
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }

  @Test
  void aRollingRestartOfEveryNodeLosesNoRequestOfAClientGivenBothCoordinators() throws Exception {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 2, 0, 0, new PrintWriter(log, true), JVM,
        List.of("--group-size", "1", "--max-groups", "2"))) {
      LocalCluster.NodeProcess leader = cluster.nodes().stream().filter(n -> n.role().equals("coordinator"))
          .findFirst().orElseThrow();
      LocalCluster.NodeProcess follower = cluster.startCoordinator();
      try (OwleryClient client = OwleryClient.builder()
          .targets(List.of(cluster.coordinatorAddress(), "127.0.0.1:" + follower.grpcPort()))
          .defaultDeadline(Duration.ofSeconds(90)).build()) {
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(200)).ignoreExceptions()
            .until(() -> readyDrivers(client).values().stream().sorted().toList(),
                drivers -> drivers.equals(List.of(leader.nodeId(), follower.nodeId())));
        cluster.supervise();
        List<Completion> solo = PROMPTS.stream().map(prompt -> client.generate(request(prompt))).toList();
        AtomicBoolean loading = new AtomicBoolean(true);
        List<CompletableFuture<Integer>> loaders = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
          int first = c;
          loaders.add(CompletableFuture.supplyAsync(() -> {
            int numCompleted = 0;
            for (int i = first; loading.get(); i = (i + 1) % PROMPTS.size(), numCompleted++) {
              assertThat(client.generate(request(PROMPTS.get(i))).tokenIds()).as(PROMPTS.get(i))
                  .containsExactlyElementsOf(solo.get(i).tokenIds()); // a failed request throws here
            }
            return numCompleted;
          }));
        }

        // every node of the cluster in turn: the shard workers, the follower (restarted under its node
        // id on its ports), then the leader (restarted under a new node id)
        for (String nodeId : List.of("shard-0", "shard-1", follower.nodeId(), leader.nodeId())) {
          LocalCluster.NodeProcess stopping = cluster.liveNode(nodeId);
          String before = RegisteredNodes.address(client, nodeId);
          stopping.process().destroy(); // SIGTERM: it drains, exits 0, and the supervisor starts it again
          assertThat(stopping.process().waitFor(60, TimeUnit.SECONDS)).isTrue();
          assertThat(stopping.process().exitValue()).isZero();
          await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(100)).ignoreExceptions().until(() -> {
            Map<String, String> drivers = readyDrivers(client);
            boolean back;
            if (nodeId.equals(leader.nodeId())) {
              back = !drivers.containsValue(leader.nodeId());
            } else if (nodeId.equals(follower.nodeId())) {
              back = cluster.liveNode(nodeId) != stopping && drivers.containsValue(nodeId);
            } else {
              String now = RegisteredNodes.address(client, nodeId);
              back = !now.isEmpty() && !now.equals(before);
            }
            return back && drivers.size() == 2 && drivers.values().stream().distinct().count() == 2;
          });
        }
        loading.set(false);
        for (CompletableFuture<Integer> loader : loaders) {
          assertThat(loader.get(120, TimeUnit.SECONDS)).isPositive(); // throws if any request failed
        }
        System.out.printf("LocalClusterCoordinatorFailoverTest: rolling restart of shard-0, shard-1, %s and %s: %d "
            + "requests completed, none failed%n", follower.nodeId(), leader.nodeId(),
            loaders.stream().mapToInt(CompletableFuture::join).sum());
      }
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }

}
