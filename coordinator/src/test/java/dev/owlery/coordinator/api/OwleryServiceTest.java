package dev.owlery.coordinator.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
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
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import dev.owlery.proto.v1.TokenizeRequest;
import dev.owlery.proto.v1.TokenizeResponse;
import dev.owlery.visionworker.VisionModel;
import dev.owlery.visionworker.VisionWorkerService;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Owlery service's edge on tiny-owl2 (max_positions 256, 9 rows per image), in process: each
 * bad field gets INVALID_ARGUMENT (NOT_FOUND for the model) with a message naming it, an image that
 * does not decode gets the real vision worker's INVALID_ARGUMENT, and a valid request without a
 * READY shard group gets UNAVAILABLE.
 */
class OwleryServiceTest {

  private static final String PROMPT = "USER: <|image|>Describe the image. ASSISTANT:";

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static ServedModel model;
  private static VisionModel visionModel;
  private static ByteString testImage;
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

  /** No group was ever formed. */
  private static final GroupDirectory NO_GROUPS = new GroupDirectory() {
    @Override
    public List<ServingGroup> servingGroups() {
      return List.of();
    }

    @Override
    public List<GroupStatus> groupStatuses() {
      return List.of();
    }

    @Override
    public void reportLost(ServingGroup group, List<String> lostNodeIds, String reason) {}
  };

  @BeforeEach
  void startServer() {
    String visionName = InProcessServerBuilder.generateName();
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(visionName).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(new VisionWorkerService("vision-0", visionModel, 8, 1 << 20, Runnable::run,
            new SimpleMeterRegistry()))).start());
    NodeChannels channels = cleanup.register(
        new NodeChannels(address -> InProcessChannelBuilder.forName(address).directExecutor().build()));
    NodeRecord visionNode = NodeRecord.starting("vision-0", UUID.randomUUID(), NodeRole.VISION_WORKER, visionName, "",
        new NodeResources(1, 1)).withState(NodeState.READY);
    VisionWorkerPool vision = cleanup.register(new VisionWorkerPool(() -> List.of(visionNode), channels,
        Duration.ofSeconds(10), Duration.ofSeconds(10), model.numImageTokens(), model.text().hiddenSize()));
    vision.sync();
    GenerationMetrics metrics = new GenerationMetrics(new SimpleMeterRegistry());
    Scheduler scheduler = cleanup.register(new Scheduler(SchedulerConfig.defaults(),
        PlacementConfig.of(2, dir.toString()), NO_GROUPS, model, metrics));
    OwleryService service = new OwleryService(model, new RequestValidator(model, ApiLimits.defaults(), () -> 7L),
        new ImageEmbeddingCache(vision::encode, ImageEmbeddingCache.DEFAULT_MAX_BYTES, new SimpleMeterRegistry()),
        scheduler, NO_GROUPS, Collections::emptyList, metrics);
    String name = InProcessServerBuilder.generateName();
    cleanup.register(new GrpcServer(InProcessServerBuilder.forName(name).directExecutor(), Duration.ofSeconds(1),
        new SimpleMeterRegistry(), List.of(service)).start());
    client = OwleryClient.builder()
        .channel(cleanup.register(InProcessChannelBuilder.forName(name).directExecutor().build()))
        .defaultDeadline(Duration.ofSeconds(30)).build();
  }

  private static GenerateRequest.Builder valid() {
    return GenerateRequest.newBuilder().setPromptText(PROMPT).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(testImage)).setMaxNewTokens(4);
  }

  private void assertRejected(GenerateRequest.Builder request, Status.Code code, String description) {
    assertThatThrownBy(() -> client.generate(request.build())).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(code);
      assertThat(e.description()).isEqualTo(description);
    });
  }

  private void assertInvalid(GenerateRequest.Builder request, String description) {
    assertRejected(request, Status.Code.INVALID_ARGUMENT, description);
  }

  @Test
  void anEmptyPromptIsRejected() {
    assertInvalid(valid().setPromptText("").clearImages(), "prompt_text must not be empty");
    assertInvalid(GenerateRequest.newBuilder(), "prompt must be set: give prompt_text or prompt_token_ids");
    assertInvalid(GenerateRequest.newBuilder().setPromptTokenIds(PromptTokenIds.getDefaultInstance()),
        "prompt_token_ids.token_ids must not be empty");
  }

  @Test
  void anUnknownModelIsNotFound() {
    assertRejected(valid().setModel("llava-7b"), Status.Code.NOT_FOUND,
        "model 'llava-7b' is not served here; this cluster serves [tiny-owl2] (ListModels)");
  }

  @Test
  void maxNewTokensMustBeWithinTheContext() {
    assertInvalid(valid().setMaxNewTokens(0), "max_new_tokens must be in 1..256 (max_positions of model tiny-owl2). Given: 0");
    assertInvalid(valid().setMaxNewTokens(257),
        "max_new_tokens must be in 1..256 (max_positions of model tiny-owl2). Given: 257");
  }

  @Test
  void aPromptLongerThanTheContextIsRejected() {
    PromptTokenIds.Builder ids = PromptTokenIds.newBuilder();
    for (int i = 0; i < 246; i++) {
      ids.addTokenIds(1);
    }
    ids.addTokenIds(-200);
    // 246 ids + 9 image rows = 255 positions: room for one token. One more id leaves none.
    assertInvalid(valid().setPromptTokenIds(ids.addTokenIds(1)),
        "the prompt takes 256 decoder positions (247 token ids, 9 image rows) but model tiny-owl2 holds at most 256 "
            + "(max_positions), leaving no room to generate; shorten the prompt");
    assertInvalid(valid().setPromptText("word ".repeat(300)).clearImages(),
        "the prompt takes 302 decoder positions (302 token ids, 0 image rows) but model tiny-owl2 holds at most 256 "
            + "(max_positions), leaving no room to generate; shorten the prompt");
  }

  @Test
  void placeholdersAndImagesMustMatch() {
    assertInvalid(valid().setPromptText("USER: <|image|><|image|>Describe. ASSISTANT:"),
        "prompt_text: the prompt has 2 <|image|> placeholders but 1 images were given (template PROMPT_TEMPLATE_NONE)");
    assertInvalid(valid().setPromptText("USER: Describe. ASSISTANT:"),
        "prompt_text: the prompt has 0 <|image|> placeholders but 1 images were given (template PROMPT_TEMPLATE_NONE)");
    assertInvalid(valid().setTemplate(PromptTemplate.PROMPT_TEMPLATE_MPLUG_OWL2).setPromptText("<|image|>Describe.")
            .addImages(Image.newBuilder().setData(testImage)),
        "prompt_text: the prompt has 1 <|image|> placeholders but 2 images were given (template PROMPT_TEMPLATE_MPLUG_OWL2)");
    assertInvalid(valid().setPromptTokenIds(PromptTokenIds.newBuilder().addTokenIds(1).addTokenIds(-200)
            .addTokenIds(-200)),
        "prompt_token_ids holds 2 image placeholder(s) (-200) but 1 image(s) were given; they must match");
    assertInvalid(valid().clearImages().setPromptTokenIds(PromptTokenIds.newBuilder().addTokenIds(1).addTokenIds(-200)),
        "prompt_token_ids holds 1 image placeholder(s) (-200) but 0 image(s) were given; they must match");
  }

  @Test
  void anImageThatDoesNotDecodeIsRejectedByTheVisionWorker() {
    GenerateRequest request = valid().setPromptText("USER: <|image|> and <|image|> ASSISTANT:")
        .addImages(Image.newBuilder().setData(ByteString.copyFromUtf8("not a picture"))).build();

    assertThatThrownBy(() -> client.generate(request)).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(e.description()).startsWith("images[1]: image rejected: ");
    });
  }

  @Test
  void samplingAndOutputFieldsAreChecked() {
    assertInvalid(valid().setTemperature(-1), "temperature must be a finite value >= 0 (0 = greedy), got -1.0");
    assertInvalid(valid().setTopK(-2), "top_k must be >= 0 (0 disables it), got -2");
    assertInvalid(valid().setTopP(0), "top_p must be in (0, 1], got 0.0");
    assertInvalid(valid().setRepetitionPenalty(0), "repetition_penalty must be a finite value > 0, got 0.0");
    assertInvalid(valid().addStopTokenIds(32000), "stop_token_ids[0] must be in [0, 32000). Given: 32000");
    assertInvalid(valid().addStopStrings("x".repeat(65)), "stop_strings[0] must be 1..64 characters long. Given: 65 characters");
    assertInvalid(valid().setLogprobs(true).setNumTopLogprobs(21), "num_top_logprobs must be in 0..20. Given: 21");
    assertInvalid(valid().setNumTopLogprobs(3),
        "num_top_logprobs needs logprobs = true. Given: num_top_logprobs 3 with logprobs false");
    assertInvalid(valid().clearImages().setPromptTokenIds(PromptTokenIds.newBuilder().addTokenIds(1).addTokenIds(40000)),
        "prompt_token_ids.token_ids[1] must be in [0, 32000) or -200 (an image placeholder). Given: 40000");
    assertInvalid(valid().addImages(Image.getDefaultInstance()), "images[1].data is empty; send the encoded image file");
  }

  @Test
  void minPAndThePenaltiesMustBeInRange() {
    assertInvalid(valid().setMinP(1.5f), "min_p must be in [0, 1] (0 disables it). Given: 1.5");
    assertInvalid(valid().setMinP(-0.1f), "min_p must be in [0, 1] (0 disables it). Given: -0.1");
    assertInvalid(valid().setMinP(Float.NaN), "min_p must be in [0, 1] (0 disables it). Given: NaN");
    assertInvalid(valid().setPresencePenalty(2.5f),
        "presence_penalty must be in [-2.0, 2.0] (0 disables it). Given: 2.5");
    assertInvalid(valid().setFrequencyPenalty(-3f),
        "frequency_penalty must be in [-2.0, 2.0] (0 disables it). Given: -3.0");
    assertInvalid(valid().setFrequencyPenalty(Float.POSITIVE_INFINITY),
        "frequency_penalty must be in [-2.0, 2.0] (0 disables it). Given: Infinity");
  }

  @Test
  void minPAndThePenaltiesAtTheirBoundsAreAccepted() {
    // Valid fields get past validation: the request then fails only for want of a shard group.
    GenerateRequest request = valid().setMinP(1f).setPresencePenalty(-2f).setFrequencyPenalty(2f).build();

    assertThatThrownBy(() -> client.generate(request)).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(e.description()).startsWith("no shard group is READY");
    });
  }

  @Test
  void aValidRequestWithoutAReadyGroupIsUnavailable() {
    assertThatThrownBy(() -> client.generate(valid().build())).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(e.description()).startsWith("no shard group is READY: none has been formed yet");
    });
  }

  @Test
  void tokenizeGivesTheOfficialIdsAndListModelsDescribesTheModel() {
    TokenizeResponse tokens = client.tokenize(TokenizeRequest.newBuilder().setText(PROMPT)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).build());

    // Fixture README, "Tokenisation": the official tokenizer_image_token ids.
    assertThat(tokens.getTokenIdsList()).containsExactly(1, 3148, 1001, 29901, 29871, -200, 20355, 915, 278, 1967,
        29889, 319, 1799, 9047, 13566, 29901);
    assertThat(tokens.getTokensList()).startsWith("<s>", "▁US", "ER", ":", "▁", "<|image|>");
    assertThat(client.listModels()).singleElement().satisfies(m -> {
      assertThat(m.getName()).isEqualTo("tiny-owl2");
      assertThat(m.getModelType()).isEqualTo("mplug_owl2");
      assertThat(m.getVocabSize()).isEqualTo(32000);
      assertThat(m.getMaxPositions()).isEqualTo(256);
      assertThat(m.getSupportsImages()).isTrue();
      assertThat(m.getNumImageTokens()).isEqualTo(9);
      assertThat(m.getNumReadyGroups()).isZero();
    });
  }
}
