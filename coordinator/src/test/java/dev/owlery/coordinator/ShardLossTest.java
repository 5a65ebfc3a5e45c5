package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.coordinator.testing.FakeShardWorkerNode;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A shard that stops answering takes its group DOWN without failing the requests it ran: they are
 * preempted and readmitted, with their prompt and the tokens already streamed, on the group
 * re-formed from a standby shard (or a replacement that registers later), and stream on exactly as
 * an undisturbed run. Only when no group is READY within the re-form timeout do they end with
 * UNAVAILABLE naming the cause.
 */
class ShardLossTest {

  /** Short, so that a stuck shard is found lost quickly. */
  private static final Duration STEP_TIMEOUT = Duration.ofSeconds(2);
  private static final int MAX_NEW_TOKENS = 12;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest request(Path dir) throws IOException {
    return GenerateRequest.newBuilder()
        .setPromptText("USER: <|image|>Describe the image. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(Files.readAllBytes(dir.resolve("test_image.png")))))
        .setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE)
        .setMaxNewTokens(MAX_NEW_TOKENS)
        .setTemperature(0)
        .build();
  }

  /** One group of 2 at most: shard workers beyond it are standbys. */
  private LoopbackOwlery startCluster(Path dir, int numShards, Duration reformTimeout) {
    return LoopbackOwlery.start(cleanup, dir, FakeShardWorkerNode.launcher(), numShards,
        config -> config.withScheduler(new SchedulerConfig(STEP_TIMEOUT, Duration.ofSeconds(1), 8, reformTimeout))
            .withPlacement(new PlacementConfig(2, config.placement().shardModelDir(), 1, 16, 512, 0, 0,
                KvCacheDtype.DEFAULT, Duration.ofSeconds(30), Duration.ofSeconds(5), Duration.ofMinutes(5), 1)));
  }

  private static FakeShardWorkerNode shard(LoopbackOwlery owlery, String nodeId) {
    return owlery.shards().stream().map(FakeShardWorkerNode.class::cast).filter(node -> node.nodeId().equals(nodeId))
        .findFirst().orElseThrow();
  }

  /** A generation whose deltas are recorded as they come; {@code firstDelta} opens on the first. */
  private record Recorded(List<Integer> tokenIds, CountDownLatch firstDelta, CompletableFuture<Completion> done) {

    static Recorded start(LoopbackOwlery owlery, GenerateRequest request) {
      Recorded recorded = new Recorded(new CopyOnWriteArrayList<>(), new CountDownLatch(1), new CompletableFuture<>());
      owlery.client().generate(request, new GenerationListener() {
        @Override
        public void onDelta(GenerateDelta delta) {
          recorded.tokenIds.addAll(delta.getTokenIdsList());
          recorded.firstDelta.countDown();
        }

        @Override
        public void onFinish(Completion completion) {
          recorded.done.complete(completion);
        }

        @Override
        public void onError(OwleryException error) {
          recorded.done.completeExceptionally(error);
        }
      });
      return recorded;
    }
  }

  @Test
  void aRequestRunningOnALostGroupStreamsOnFromTheGroupReFormedWithTheStandby() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    GenerateRequest request = request(dir);
    LoopbackOwlery owlery = startCluster(dir, 4, Duration.ofSeconds(30));
    ShardGroupStatus formed = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    Completion undisturbed = owlery.client().generate(request);
    assertThat(owlery.client().getClusterStatus().getGroupsList()).hasSize(1); // two standbys, no second group
    String lost = formed.getNodeIds(1);
    String standby = List.of("shard-0", "shard-1", "shard-2", "shard-3").stream()
        .filter(id -> !formed.getNodeIdsList().contains(id)).findFirst().orElseThrow();
    for (String member : formed.getNodeIdsList()) {
      shard(owlery, member).delaySteps(Duration.ofMillis(100)); // 12 tokens take over a second
    }

    Recorded stream = Recorded.start(owlery, request);
    assertThat(stream.firstDelta().await(30, TimeUnit.SECONDS)).isTrue();
    shard(owlery, lost).stopAnswering();
    int streamedBeforeLoss = stream.tokenIds().size();

    Completion completion = stream.done().get(60, TimeUnit.SECONDS);
    assertThat(streamedBeforeLoss).isBetween(1, MAX_NEW_TOKENS - 2);
    assertThat(completion.tokenIds()).containsExactlyElementsOf(undisturbed.tokenIds());
    assertThat(stream.tokenIds()).containsExactlyElementsOf(undisturbed.tokenIds()); // nothing streamed twice
    assertThat(completion.text()).isEqualTo(undisturbed.text());
    ShardGroupStatus reformed = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(5));
    assertThat(reformed.getNodeIdsList()).containsExactly(formed.getNodeIds(0), standby);
    assertThat(shard(owlery, formed.getNodeIds(0)).numSequencesHeld()).isZero();
    assertThat(shard(owlery, standby).numSequencesHeld()).isZero();
    assertThat(owlery.client().getClusterStatus().getGroupsList()).hasSize(1);
  }

  @Test
  void withoutAGroupToResumeOnTheRequestEndsUnavailableNamingTheCauseAfterTheReformTimeout() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    GenerateRequest request = request(dir);
    LoopbackOwlery owlery = startCluster(dir, 2, Duration.ofSeconds(1));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    FakeShardWorkerNode stuck = shard(owlery, "shard-1");
    shard(owlery, "shard-0").delaySteps(Duration.ofMillis(100));
    stuck.delaySteps(Duration.ofMillis(100));

    Recorded stream = Recorded.start(owlery, request);
    assertThat(stream.firstDelta().await(30, TimeUnit.SECONDS)).isTrue();
    stuck.stopAnswering();

    assertThatThrownBy(() -> stream.done().get(30, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
        .cause().isInstanceOfSatisfying(OwleryException.class, e -> {
          assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
          assertThat(e.description())
              .startsWith("shard worker shard-1 (" + stuck.grpcAddress() + ", rank 1 of group group-0) did not answer step")
              .endsWith(", and neither it nor another group was READY within 1000 ms; retry when shard workers are back");
        });
    ShardGroupStatus down = owlery.awaitGroup("group-0", NodeState.NODE_STATE_DOWN, Duration.ofSeconds(5));
    assertThat(down.getNodeIdsList()).containsExactly("shard-0", "");
  }

  @Test
  void aRequestArrivingWhileTheGroupIsDownWaitsForAReplacement() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    GenerateRequest request = request(dir);
    LoopbackOwlery owlery = startCluster(dir, 2, Duration.ofSeconds(30));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    Completion undisturbed = owlery.client().generate(request);
    FakeShardWorkerNode leaving = shard(owlery, "shard-0");

    leaving.close();

    ShardGroupStatus down = owlery.awaitGroup("group-0", NodeState.NODE_STATE_DOWN, Duration.ofSeconds(10));
    assertThat(down.getNodeIdsList()).containsExactly("", "shard-1");
    CompletableFuture<Completion> waiting = owlery.client().generateAsync(request);
    assertThat(waiting).isNotDone();

    owlery.addShard("shard-2");

    ShardGroupStatus ready = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    assertThat(ready.getNodeIdsList()).containsExactly("shard-2", "shard-1");
    assertThat(waiting.get(30, TimeUnit.SECONDS).tokenIds()).containsExactlyElementsOf(undisturbed.tokenIds());
  }
}
