package dev.owlery.coordinator.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeResources;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.GroupStatus;
import dev.owlery.coordinator.placement.ImageEmbeddingCache;
import dev.owlery.coordinator.placement.NodeChannels;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.VisionWorkerPool;
import dev.owlery.coordinator.scheduler.GenerationMetrics;
import dev.owlery.coordinator.scheduler.Scheduler;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.coordinator.testing.GatedShardWorker;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.EncodeImagesRequest;
import dev.owlery.proto.internal.v1.EncodeImagesResponse;
import dev.owlery.proto.internal.v1.VisionWorkerGrpc;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.visionworker.VisionModel;
import dev.owlery.visionworker.VisionWorkerService;
import io.grpc.BindableService;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Serving behaviour of the Owlery service on tiny-owl2, in process, with a one-rank shard worker
 * that holds its steps until opened ({@link GatedShardWorker}, every step's argmax is token 100) and
 * the real vision worker behind a call counter: the image-embedding cache, admission limits and the
 * generation meters read back from the registry.
 */
class ServingLimitsTest {

  private static final String IMAGE_PROMPT = "USER: <|image|>Describe the image. ASSISTANT:";
  private static final int TOKEN = 100;
  private static final Duration AT_MOST = Duration.ofSeconds(10);

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static ServedModel model;
  private static VisionModel visionModel;
  private static ByteString testImage;

  private final MeterRegistry meters = new SimpleMeterRegistry();
  private final AtomicInteger numEncodeCalls = new AtomicInteger();
  private GatedShardWorker shard;
  private Scheduler scheduler;
  private OwleryClient client;

  @BeforeAll
  static void load() throws IOException {
    dir = Fixtures.tinyOwl2();
    model = ServedModel.load(dir, "");
    visionModel = VisionModel.load(dir, KernelsProvider.shared());
    testImage = ByteString.copyFrom(Files.readAllBytes(dir.resolve("test_image.png")));
  }

  @AfterAll
  static void close() {
    if (visionModel != null) {
      visionModel.close();
    }
  }

  /** Starts the service; the shard's gate starts {@code open} or closed. */
  private void start(ApiLimits limits, SchedulerConfig schedulerConfig, boolean open) {
    VisionWorkerService realVision =
        new VisionWorkerService("vision-0", visionModel, 8, 1 << 20, Runnable::run, new SimpleMeterRegistry());
    VisionWorkerGrpc.VisionWorkerImplBase countingVision = new VisionWorkerGrpc.VisionWorkerImplBase() {
      @Override
      public void encodeImages(EncodeImagesRequest request, StreamObserver<EncodeImagesResponse> responses) {
        numEncodeCalls.incrementAndGet();
        realVision.encodeImages(request, responses);
      }
    };
    String visionName = InProcessServerBuilder.generateName();
    String shardName = InProcessServerBuilder.generateName();
    shard = new GatedShardWorker(model.vocabSize(), TOKEN, open);
    serve(visionName, countingVision);
    serve(shardName, shard);
    NodeChannels channels = cleanup.register(
        new NodeChannels(address -> InProcessChannelBuilder.forName(address).directExecutor().build()));
    NodeRecord visionNode = NodeRecord.starting("vision-0", UUID.randomUUID(), NodeRole.VISION_WORKER, visionName, "",
        new NodeResources(1, 1)).withState(NodeState.READY);
    VisionWorkerPool vision = cleanup.register(new VisionWorkerPool(() -> List.of(visionNode), channels,
        Duration.ofSeconds(10), Duration.ofSeconds(10), model.numImageTokens(), model.text().hiddenSize()));
    vision.sync();
    ServingGroup group = shard.group("group-0", channels.channel(shardName));
    GroupDirectory directory = new GroupDirectory() {
      @Override
      public List<ServingGroup> servingGroups() {
        return List.of(group);
      }

      @Override
      public List<GroupStatus> groupStatuses() {
        return List.of();
      }

      @Override
      public void reportLost(ServingGroup lost, List<String> lostNodeIds, String reason) {}
    };
    GenerationMetrics metrics = new GenerationMetrics(meters);
    scheduler = cleanup.register(new Scheduler(schedulerConfig, PlacementConfig.of(1, dir.toString()), directory, model,
        metrics));
    OwleryService service = new OwleryService(model, new RequestValidator(model, limits, () -> 7L),
        new ImageEmbeddingCache(vision::encode, ImageEmbeddingCache.DEFAULT_MAX_BYTES, meters), scheduler, directory,
        Collections::emptyList, metrics);
    String name = InProcessServerBuilder.generateName();
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(name).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(service)).start());
    client = OwleryClient.builder()
        .channel(cleanup.register(InProcessChannelBuilder.forName(name).directExecutor().build()))
        .defaultDeadline(Duration.ofSeconds(30)).build();
  }

  private void serve(String name, BindableService service) {
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(name).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(service)).start());
  }

  private static GenerateRequest textRequest() {
    return GenerateRequest.newBuilder().setPromptText("USER: Hello. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setMaxNewTokens(3).build();
  }

  private double gauge(String name) {
    return meters.get(name).gauge().value();
  }

  @Test
  void aRepeatedImageIsTakenFromTheCacheWithoutCallingTheVisionWorker() {
    start(ApiLimits.defaults(), SchedulerConfig.defaults(), true);
    GenerateRequest request = GenerateRequest.newBuilder().setPromptText(IMAGE_PROMPT)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).addImages(Image.newBuilder().setData(testImage))
        .setMaxNewTokens(2).build();

    Completion first = client.generate(request);
    assertThat(numEncodeCalls).hasValue(1);
    Completion second = client.generate(request);

    assertThat(numEncodeCalls).hasValue(1);
    assertThat(meters.get(ImageEmbeddingCache.HITS_COUNTER).counter().count()).isEqualTo(1);
    assertThat(meters.get(ImageEmbeddingCache.MISSES_COUNTER).counter().count()).isEqualTo(1);
    assertThat(gauge(ImageEmbeddingCache.ENTRIES_GAUGE)).isEqualTo(1);
    // one image: 9 rows of hidden_size F32
    assertThat(gauge(ImageEmbeddingCache.BYTES_GAUGE))
        .isEqualTo(model.numImageTokens() * model.text().hiddenSize() * Float.BYTES);
    assertThat(second.tokenIds()).containsExactlyElementsOf(first.tokenIds()).containsExactly(TOKEN, TOKEN);
  }

  @Test
  void aFullGroupQueueIsResourceExhaustedAndTheQueuedRequestsComplete() {
    start(ApiLimits.defaults(), new SchedulerConfig(Duration.ofSeconds(30), Duration.ofSeconds(1), 1, Duration.ofSeconds(30)), false);

    CompletableFuture<Completion> running = client.generateAsync(textRequest());
    await().atMost(AT_MOST).until(() -> shard.numHeld() == 1);
    CompletableFuture<Completion> waiting = client.generateAsync(textRequest());
    await().atMost(AT_MOST).until(() -> scheduler.status().getNumWaitingRequests() == 1);
    assertThat(gauge(GenerationMetrics.RUNNING_GAUGE)).isEqualTo(1);
    assertThat(gauge(GenerationMetrics.WAITING_GAUGE)).isEqualTo(1);

    assertThatThrownBy(() -> client.generate(textRequest())).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(e.description())
          .isEqualTo("shard group group-0 already has 1 requests waiting (maxQueuedPerGroup 1); retry shortly");
    });
    shard.open();

    assertThat(running.orTimeout(10, TimeUnit.SECONDS).join().finishReason()).isEqualTo(FinishReason.FINISH_REASON_MAX_NEW_TOKENS);
    assertThat(waiting.orTimeout(10, TimeUnit.SECONDS).join().tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    assertThat(meters.get(GenerationMetrics.REJECTED_COUNTER).tag("limit", "max_queued_per_group").counter().count())
        .isEqualTo(1);
  }

  @Test
  void beyondMaxAdmittedRequestsACallIsResourceExhaustedAtOnceAndAdmissionFreesUpAfterwards() {
    start(ApiLimits.defaults().withMaxAdmittedRequests(2), SchedulerConfig.defaults(), false);

    CompletableFuture<Completion> running = client.generateAsync(textRequest());
    await().atMost(AT_MOST).until(() -> shard.numHeld() == 1);
    CompletableFuture<Completion> waiting = client.generateAsync(textRequest());
    await().atMost(AT_MOST).until(() -> scheduler.status().getNumWaitingRequests() == 1);
    assertThat(gauge(GenerationMetrics.ADMITTED_GAUGE)).isEqualTo(2);

    assertThatThrownBy(() -> client.generate(textRequest())).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(e.description())
          .isEqualTo("the coordinator already has 2 requests in flight (maxAdmittedRequests 2); retry shortly");
    });
    shard.open();

    assertThat(running.orTimeout(10, TimeUnit.SECONDS).join().tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    assertThat(waiting.orTimeout(10, TimeUnit.SECONDS).join().tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    assertThat(gauge(GenerationMetrics.ADMITTED_GAUGE)).isZero();
    assertThat(client.generate(textRequest()).tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    assertThat(meters.get(GenerationMetrics.REJECTED_COUNTER).tag("limit", "max_admitted_requests").counter().count())
        .isEqualTo(1);
    assertThat(meters.get(GenerationMetrics.REQUESTS_COUNTER).tag("outcome", "resource_exhausted").counter().count())
        .isEqualTo(1);
  }

  @Test
  void aCancelledRequestGivesItsAdmissionBack() {
    start(ApiLimits.defaults().withMaxAdmittedRequests(1), SchedulerConfig.defaults(), false);

    CompletableFuture<Completion> cancelled = client.generateAsync(textRequest());
    await().atMost(AT_MOST).until(() -> shard.numHeld() == 1);
    assertThat(gauge(GenerationMetrics.ADMITTED_GAUGE)).isEqualTo(1);
    cancelled.cancel(true);

    await().atMost(AT_MOST).until(() -> gauge(GenerationMetrics.ADMITTED_GAUGE) == 0
        && scheduler.status().getNumRunningSequences() == 0);
    shard.open();
    assertThat(client.generate(textRequest()).tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    assertThat(meters.get(GenerationMetrics.REQUESTS_COUNTER).tag("outcome", "cancelled").counter().count())
        .isEqualTo(1);
  }

  @Test
  void aCompletedRequestIsMeasuredWithVllmStyleMeters() {
    start(ApiLimits.defaults(), SchedulerConfig.defaults(), true);

    Completion completion = client.generate(textRequest());

    assertThat(completion.tokenIds()).containsExactly(TOKEN, TOKEN, TOKEN);
    long ttftNanos = completion.usage().getTimeToFirstTokenNs();
    long e2eNanos = completion.usage().getTotalDurationNs();
    assertThat(meters.get(GenerationMetrics.FIRST_TOKEN_TIMER).timer().count()).isEqualTo(1);
    assertThat(meters.get(GenerationMetrics.FIRST_TOKEN_TIMER).timer().totalTime(TimeUnit.NANOSECONDS))
        .isEqualTo(ttftNanos);
    assertThat(meters.get(GenerationMetrics.E2E_TIMER).timer().totalTime(TimeUnit.NANOSECONDS)).isEqualTo(e2eNanos);
    assertThat(meters.get(GenerationMetrics.QUEUE_TIMER).timer().totalTime(TimeUnit.NANOSECONDS))
        .isEqualTo(completion.usage().getQueueDurationNs());
    // 3 tokens: one mean interval, within the time from the first token to the end
    assertThat(meters.get(GenerationMetrics.TIME_PER_OUTPUT_TOKEN_TIMER).timer().count()).isEqualTo(1);
    assertThat(meters.get(GenerationMetrics.TIME_PER_OUTPUT_TOKEN_TIMER).timer().totalTime(TimeUnit.NANOSECONDS))
        .isPositive().isLessThanOrEqualTo((e2eNanos - ttftNanos) / 2.0);
    assertThat(meters.get(GenerationMetrics.TOKENS_COUNTER).counter().count()).isEqualTo(3);
    assertThat(meters.get(GenerationMetrics.PROMPT_TOKENS_COUNTER).counter().count())
        .isEqualTo(completion.usage().getNumPromptTokens()).isPositive();
    assertThat(meters.get(GenerationMetrics.REQUESTS_COUNTER).tag("outcome", "ok").counter().count()).isEqualTo(1);
    assertThat(gauge(GenerationMetrics.ADMITTED_GAUGE)).isZero(); // given back before the finish is sent
    assertThat(gauge(GenerationMetrics.WAITING_GAUGE)).isZero();
    // the sequence stops running once released on its ranks, just after the finish is sent
    await().atMost(AT_MOST).until(() -> gauge(GenerationMetrics.RUNNING_GAUGE) == 0);
  }
}
