package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.PromptTemplate;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Two coordinators over stories260k's real shard workers in groups of one: the first leads
 * placement and hands one of its two groups to the coordinator that joins later, both serve, and
 * when the leader leaves the other takes placement over (a higher epoch) and re-forms the leader's
 * group for itself while the requests sent through it go on undisturbed. A coordinator given no
 * group refuses Generate at once, so that a client given several coordinators goes to the next.
 */
class SeveralCoordinatorsTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest story() {
    return GenerateRequest.newBuilder().setPromptText("Once upon a time").setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setTemperature(0).setMaxNewTokens(24).build();
  }

  private OwleryClient client(CoordinatorNode coordinator) {
    return cleanup.register(OwleryClient.builder().target(coordinator.grpcAddress())
        .defaultDeadline(Duration.ofSeconds(60)).build());
  }

  private static PlacementConfig groupsOfOne(PlacementConfig p) {
    return new PlacementConfig(1, p.shardModelDir(), p.maxNumSequences(), p.blockSizeTokens(), p.maxNumTokens(),
        p.kvCacheTokens(), p.kvCacheBytes(), p.kvCacheDtype(), p.loadTimeout(), p.healthTimeout(), p.quarantine(),
        p.maxGroups());
  }

  @Test
  void theFollowerTakesPlacementOverAndKeepsServingWhenTheLeaderLeaves() throws Exception {
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.stories260k(), ShardWorkerLauncher.real(), 2,
        config -> config.withPlacement(groupsOfOne(config.placement())));
    CoordinatorNode first = owlery.coordinator();
    CoordinatorNode second = owlery.addCoordinator("coordinator-1");

    // The later coordinator is given one of the first's two groups.
    await().atMost(Duration.ofSeconds(30)).until(
        () -> first.drivenGroupIds().size() == 1 && second.drivenGroupIds().size() == 1);
    assertThat(second.placementLeader().nodeId()).isEqualTo("coordinator-0");
    long firstEpoch = second.placementLeader().epoch();
    String expected = client(first).generate(story()).text();
    OwleryClient follower = client(second);
    assertThat(follower.generate(story()).text()).isEqualTo(expected);

    // Load through the follower while the leader leaves.
    AtomicBoolean loading = new AtomicBoolean(true);
    AtomicInteger completed = new AtomicInteger();
    List<CompletableFuture<Void>> load = IntStream.range(0, 3).mapToObj(i -> CompletableFuture.runAsync(() -> {
      while (loading.get()) {
        Completion completion = follower.generate(story());
        assertThat(completion.text()).isEqualTo(expected);
        completed.incrementAndGet();
      }
    })).toList();
    await().atMost(Duration.ofSeconds(30)).until(() -> completed.get() >= 3);
    long left = System.nanoTime();
    first.close();

    await().atMost(Duration.ofSeconds(30)).until(() -> "coordinator-1".equals(second.placementLeader().nodeId()));
    double takeoverSeconds = (System.nanoTime() - left) / 1e9;
    await().atMost(Duration.ofSeconds(30)).until(() -> second.drivenGroupIds().equals(List.of("group-0", "group-1")));
    double reformedSeconds = (System.nanoTime() - left) / 1e9;
    int before = completed.get();
    await().atMost(Duration.ofSeconds(30)).until(() -> completed.get() >= before + 3);
    loading.set(false);
    CompletableFuture.allOf(load.toArray(CompletableFuture[]::new)).get(); // throws if any request failed
    assertThat(second.placementLeader().epoch()).isGreaterThan(firstEpoch);
    assertThat(client(second).generate(story()).text()).isEqualTo(expected);
    System.out.printf("leader left: coordinator-1 led after %.2f s, both groups READY under it after %.2f s; "
        + "%d requests completed through it, none failed%n", takeoverSeconds, reformedSeconds, completed.get());
  }

  @Test
  void aCoordinatorThatDrivesNoGroupRefusesAtOnceAndAClientGivenBothGoesToTheOther() {
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.stories260k(), ShardWorkerLauncher.real(), 1,
        config -> config.withPlacement(groupsOfOne(config.placement())));
    CoordinatorNode first = owlery.coordinator();
    await().atMost(Duration.ofSeconds(30)).until(() -> first.drivenGroupIds().equals(List.of("group-0")));
    CoordinatorNode second = owlery.addCoordinator("coordinator-1");

    assertThatThrownBy(() -> client(second).generate(story()))
        .isInstanceOfSatisfying(OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE))
        .hasMessageContaining("this coordinator drives none of the cluster's 1 shard groups (each is stepped by one "
            + "coordinator); send the request to another coordinator");
    OwleryClient both = cleanup.register(OwleryClient.builder()
        .targets(List.of(second.grpcAddress(), first.grpcAddress())).defaultDeadline(Duration.ofSeconds(60)).build());
    assertThat(both.generate(story()).text()).isEqualTo(client(first).generate(story()).text());
    assertThat(both.getClusterStatus().getGroupsList()).singleElement()
        .satisfies(group -> assertThat(group.getCoordinatorNodeId()).isEqualTo("coordinator-0"));
  }
}
