package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.coordinator.testing.FakeShardWorkerNode;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.AspectRatioPolicy;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A shard that stops answering ends the request in flight with UNAVAILABLE naming it, takes its
 * group DOWN, and a newly registered shard brings the group back to READY without a restart.
 */
class ShardLossTest {

  /** Short, so the test is quick; the request must end within 10 s whatever it is. */
  private static final Duration STEP_TIMEOUT = Duration.ofSeconds(2);

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest request(Path dir) throws IOException {
    return GenerateRequest.newBuilder()
        .setPromptText("USER: <|image|>Describe the image. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(Files.readAllBytes(dir.resolve("test_image.png")))))
        .setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE)
        .setMaxNewTokens(4)
        .setTemperature(0)
        .build();
  }

  private LoopbackOwlery startCluster(Path dir) {
    return LoopbackOwlery.start(cleanup, dir, FakeShardWorkerNode.launcher(), 2,
        config -> config.withScheduler(new SchedulerConfig(STEP_TIMEOUT, Duration.ofSeconds(1), 8))
            .withPlacement(new PlacementConfig(2, config.placement().shardModelDir(), 1, 16, 512, 0, 0,
                KvCacheDtype.DEFAULT, Duration.ofSeconds(30), Duration.ofSeconds(5), Duration.ofMinutes(5))));
  }

  @Test
  void aStuckShardFailsTheRequestAndAReplacementRestoresService() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    GenerateRequest request = request(dir);
    LoopbackOwlery owlery = startCluster(dir);
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    Completion before = owlery.client().generate(request);

    FakeShardWorkerNode stuck = (FakeShardWorkerNode) owlery.shards().get(1);
    stuck.stopAnswering();
    long start = System.nanoTime();
    assertThatThrownBy(() -> owlery.client().generate(request))
        .isInstanceOfSatisfying(OwleryException.class, e -> {
          assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
          assertThat(e.description())
              .contains("shard worker shard-1 (" + stuck.grpcAddress() + ", rank 1 of group group-0) did not answer step")
              .endsWith("the shard group is being re-formed; retry shortly");
        });
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    ShardGroupStatus down = owlery.awaitGroup("group-0", NodeState.NODE_STATE_DOWN, Duration.ofSeconds(5));
    assertThat(down.getNodeIdsList()).containsExactly("shard-0", "");

    owlery.addShard("shard-2");

    ShardGroupStatus ready = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    assertThat(ready.getNodeIdsList()).containsExactly("shard-0", "shard-2");
    Completion after = owlery.client().generate(request);
    assertThat(after.tokenIds()).hasSize(4).containsExactlyElementsOf(before.tokenIds());
  }

  @Test
  void aShardThatLeavesTakesItsGroupDownUntilAReplacementRegisters() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    GenerateRequest request = request(dir);
    LoopbackOwlery owlery = startCluster(dir);
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    FakeShardWorkerNode leaving = (FakeShardWorkerNode) owlery.shards().get(0);
    String address = leaving.grpcAddress();

    leaving.close();

    ShardGroupStatus down = owlery.awaitGroup("group-0", NodeState.NODE_STATE_DOWN, Duration.ofSeconds(10));
    assertThat(down.getNodeIdsList()).containsExactly("", "shard-1");
    assertThatThrownBy(() -> owlery.client().generate(request)).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(e.description()).isEqualTo("no shard group is READY (group-0 DOWN (shard worker shard-0 (" + address
          + ", rank 0 of group group-0) left the cluster)); the shard groups are being (re-)formed; retry shortly");
    });

    owlery.addShard("shard-2");

    ShardGroupStatus ready = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    assertThat(ready.getNodeIdsList()).containsExactly("shard-2", "shard-1");
    assertThat(owlery.client().generate(request).tokenIds()).hasSize(4);
  }
}
