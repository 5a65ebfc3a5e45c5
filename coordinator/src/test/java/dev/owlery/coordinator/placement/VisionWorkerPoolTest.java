package dev.owlery.coordinator.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeResources;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.Image;
import dev.owlery.visionworker.VisionModel;
import dev.owlery.visionworker.VisionWorkerService;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Choosing a vision worker: failing over to another one, waiting for one to register (a restarted
 * one) when none is left, and saying who failed when none came.
 */
class VisionWorkerPoolTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static NodeRecord visionNode(String nodeId, String address, NodeState state) {
    return NodeRecord.starting(nodeId, UUID.randomUUID(), NodeRole.VISION_WORKER, address, "", new NodeResources(1, 1))
        .withState(state);
  }

  /** Short: the failure cases wait this long for a worker that never comes. */
  private static final Duration WAIT_FOR_WORKER = Duration.ofMillis(300);

  private VisionWorkerPool pool(List<NodeRecord> registered, Duration waitForWorker) {
    NodeChannels channels = cleanup.register(
        new NodeChannels(address -> InProcessChannelBuilder.forName(address).directExecutor().build()));
    VisionWorkerPool pool = cleanup.register(
        new VisionWorkerPool(() -> registered, channels, Duration.ofSeconds(10), waitForWorker, 9, 64));
    pool.sync();
    return pool;
  }

  private VisionWorkerPool pool(List<NodeRecord> registered) {
    return pool(registered, WAIT_FOR_WORKER);
  }

  private String startWorker(VisionModel model, String nodeId) {
    String name = InProcessServerBuilder.generateName();
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(name).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(new VisionWorkerService(nodeId, model, 8, 1 << 20, Runnable::run,
            new SimpleMeterRegistry()))).start());
    return name;
  }

  @Test
  void aRequestWhoseWorkerIsGoneWaitsForTheRestartedOne() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    VisionModel model = cleanup.register(VisionModel.load(dir, KernelsProvider.shared()));
    // vision-a's process died: its record still names the old address, where nothing listens
    List<NodeRecord> registered = new CopyOnWriteArrayList<>(
        List.of(visionNode("vision-a", "gone-" + UUID.randomUUID(), NodeState.READY)));
    VisionWorkerPool pool = pool(registered, Duration.ofSeconds(30));

    CompletableFuture<List<ByteString>> encoding = pool.encode(
        List.of(Image.newBuilder().setData(ByteString.copyFrom(Files.readAllBytes(dir.resolve("test_image.png")))).build()),
        AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE);
    assertThat(encoding).isNotDone();

    // restarted under the same node id on a new address
    registered.set(0, visionNode("vision-a", startWorker(model, "vision-a"), NodeState.READY));
    pool.sync();

    assertThat(encoding.get(30, TimeUnit.SECONDS)).singleElement()
        .satisfies(rows -> assertThat(rows.size()).isEqualTo(9 * 64 * Float.BYTES));
  }

  @Test
  void aFailedWorkerIsSkippedForTheNextOne() throws Exception {
    Path dir = Fixtures.tinyOwl2();
    VisionModel model = cleanup.register(VisionModel.load(dir, KernelsProvider.shared()));
    String live = InProcessServerBuilder.generateName();
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(live).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(new VisionWorkerService("vision-b", model, 8, 1 << 20, Runnable::run,
            new SimpleMeterRegistry()))).start());
    // vision-a sorts first and has no server behind its address; vision-c is not READY.
    VisionWorkerPool pool = pool(List.of(visionNode("vision-a", "nowhere-" + UUID.randomUUID(), NodeState.READY),
        visionNode("vision-b", live, NodeState.READY), visionNode("vision-c", live, NodeState.DRAINING)));
    assertThat(pool.nodeIds()).containsExactly("vision-a", "vision-b");

    List<ByteString> embeddings = pool.encode(
        List.of(Image.newBuilder().setData(ByteString.copyFrom(Files.readAllBytes(dir.resolve("test_image.png")))).build()),
        AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE).get(30, TimeUnit.SECONDS);

    assertThat(embeddings).singleElement().satisfies(rows -> assertThat(rows.size()).isEqualTo(9 * 64 * Float.BYTES));
  }

  @Test
  void whenEveryWorkerFailsTheRequestIsUnavailableNamingTheLastOne() {
    String nowhere = "nowhere-" + UUID.randomUUID();
    VisionWorkerPool pool = pool(List.of(visionNode("vision-a", nowhere, NodeState.READY)));

    assertThatThrownBy(() -> pool.encode(List.of(Image.newBuilder().setData(ByteString.copyFromUtf8("x")).build()),
        AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD).get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause().isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
          assertThat(e.getStatus().getDescription())
              .startsWith("vision worker vision-a (" + nowhere + ") failed: UNAVAILABLE")
              .endsWith("; no other vision worker was ready within 300 ms; retry shortly");
        });
    assertThatThrownBy(() -> pool(List.of()).encode(List.of(), AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD)
        .get(30, TimeUnit.SECONDS))
        .cause().hasMessage("UNAVAILABLE: no vision worker was ready to encode the request's images within 300 ms; start "
            + "one or retry shortly");
  }
}
