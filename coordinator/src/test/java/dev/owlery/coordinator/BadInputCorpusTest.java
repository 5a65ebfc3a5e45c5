package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.KvCacheDtype;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import dev.owlery.proto.v1.ShardGroupStatus;
import dev.owlery.shard.node.ShardWorkerNode;
import dev.owlery.shard.worker.ShardWorkerConfig;
import dev.owlery.shard.worker.ShardWorkerServer;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every file of {@code testdata/bad-inputs/} (hostile or broken files: truncated and bomb images,
 * bad safetensors headers, a pickle that names {@code os.system}, a truncated tokenizer...) is sent
 * to a running tiny-owl2 cluster as an image and as a prompt, and offered to a shard worker as a
 * checkpoint. Each is refused with a status a client can act on (never INTERNAL or UNKNOWN, never a
 * stack trace); afterwards the cluster answers a greedy request with the same tokens as before and
 * every KV block is free again.
 */
class BadInputCorpusTest {

  private static final String PROMPT = "USER: <|image|>Describe the image. ASSISTANT:";

  /** What the refusal of each file sent as an image says (testdata/bad-inputs/README.md says what is wrong with it). */
  private static final Map<String, String> IMAGE_REFUSALS = Map.ofEntries(
      Map.entry("bad-pickle.bin", "the 284 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("bomb-100000x100000.png", "the PNG declares 100000x100000 = 10000000000 pixels, over the limit"),
      Map.entry("corrupt-header.jpeg", "cannot read the JPEG header"),
      Map.entry("empty", "images[0].data is empty; send the encoded image file"),
      Map.entry("huge-frame.gif", "the GIF declares 65535x65535 = 4294836225 pixels, over the limit"),
      Map.entry("huge-header-length.safetensors", "the 27 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("invalid-utf8.txt", "the 54 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("negative-width.bmp", "cannot read the BMP header (Unable to read the image header.: Width (-5) and "
          + "height (0) must be > 0)"),
      Map.entry("offsets-past-end.safetensors", "the 176 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("random-4k.bin", "the 4096 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("truncated-tokenizer.model", "the 2507 bytes are not a PNG, JPEG, BMP or GIF image"),
      Map.entry("truncated.png", "the PNG data ends early"),
      Map.entry("zero-width.png",
          "the PNG declares a size of 0x5; an image needs at least one pixel in each direction"));

  /** What the refusal says of the files made to be bad checkpoints; the others need only name the file. */
  private static final Map<String, String> CHECKPOINT_REFUSALS = Map.of(
      "bad-pickle.bin as pytorch_model.bin", "archive/data.pkl, byte 16: pickle global 'os.system' is not allowed",
      "huge-header-length.safetensors as model.safetensors", "header length 4611686018427387904 runs past the end",
      "offsets-past-end.safetensors as model.safetensors",
      "tensor 'model.embed_tokens.weight': data offsets [0, 4000000) are out of range",
      "empty as model.safetensors", "file is truncated: 0 bytes");

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @TempDir Path temp;

  @Test
  void everyBadInputIsRefusedClearlyAndTheClusterKeepsServing() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    List<Path> corpus = corpus();
    assertThat(corpus).extracting(file -> file.getFileName().toString())
        .containsExactlyInAnyOrderElementsOf(IMAGE_REFUSALS.keySet());
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, ShardWorkerLauncher.real(), 2, config -> config);
    ShardGroupStatus group = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    byte[] image = Files.readAllBytes(dir.resolve("test_image.png"));
    List<Integer> before = owlery.client().generate(greedy(image)).tokenIds();

    for (Path file : corpus) {
      byte[] bytes = Files.readAllBytes(file);
      GenerateRequest asImage = greedy(bytes);
      refused(file, "image", () -> owlery.client().generate(asImage));
      GenerateRequest asPrompt = asPrompt(bytes);
      answeredOrRefused(file, "prompt", () -> owlery.client().generate(asPrompt));
    }

    assertThat(owlery.client().generate(greedy(image)).tokenIds()).containsExactlyElementsOf(before);
    assertThat(owlery.client().getClusterStatus().getGroupsList()).singleElement().satisfies(after -> {
      assertThat(after.getState()).isEqualTo(NodeState.NODE_STATE_READY);
      assertThat(after.getNumFreeKvBlocks()).isEqualTo(after.getNumKvBlocks()).isEqualTo(group.getNumKvBlocks());
    });
    // and each shard's own count: the coordinator releases a finished sequence on its ranks after answering
    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50)).untilAsserted(() -> {
      for (AutoCloseable shard : owlery.shards()) {
        PrometheusScrape scrape = PrometheusScrape.of(((ShardWorkerNode) shard).record().metricsUrl());
        assertThat(scrape.sum("owlery_kv_blocks_used")).as(((ShardWorkerNode) shard).nodeId()).isZero();
        assertThat(scrape.sum("owlery_kv_blocks_free")).as(((ShardWorkerNode) shard).nodeId()).isPositive();
      }
    });
  }

  /**
   * Each file as {@code model.safetensors} and as {@code pytorch_model.bin} next to tiny-owl2's
   * config.json. A shard worker of its own: LoadSlice replaces the slice a worker holds, so a
   * cluster's worker asked to load a bad checkpoint would leave its group by design.
   */
  @Test
  void everyBadInputOfferedAsACheckpointIsRefusedAndTheShardStillLoadsAGoodOne() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    String name = InProcessServerBuilder.generateName();
    ShardWorkerConfig config = ShardWorkerConfig.defaults().withAllowedModelDirs(List.of(temp, dir));
    cleanup.register(ShardWorkerServer.create(InProcessServerBuilder.forName(name), Duration.ofSeconds(2), config,
        KernelsProvider.shared(), new SimpleMeterRegistry()).start());
    ShardWorkerGrpc.ShardWorkerBlockingStub shard =
        ShardWorkerGrpc.newBlockingStub(cleanup.register(InProcessChannelBuilder.forName(name).build()));

    for (Path file : corpus()) {
      for (String checkpointName : List.of("model.safetensors", "pytorch_model.bin")) {
        Path model = Files.createDirectories(temp.resolve(file.getFileName() + "-as-" + checkpointName));
        Files.copy(dir.resolve("config.json"), model.resolve("config.json"));
        Files.copy(file, model.resolve(checkpointName));
        assertThatThrownBy(() -> shard.withDeadlineAfter(10, TimeUnit.SECONDS).loadSlice(load(model)))
            .as("%s as %s", file.getFileName(), checkpointName)
            .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
              assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).contains(model.resolve(checkpointName).toString())
                  .contains(CHECKPOINT_REFUSALS.getOrDefault(file.getFileName() + " as " + checkpointName, ""));
              assertClear(e.getStatus().getDescription());
            });
      }
    }

    assertThat(shard.withDeadlineAfter(30, TimeUnit.SECONDS).loadSlice(load(dir)).getVocabEnd()).isPositive();
  }

  private static void refused(Path file, String as, Runnable call) {
    assertThatThrownBy(call::run).as("%s as %s", file.getFileName(), as)
        .isInstanceOfSatisfying(OwleryException.class, e -> {
          assertThat(e.code()).as(e.description()).isEqualTo(Status.Code.INVALID_ARGUMENT);
          assertThat(e.description()).contains(IMAGE_REFUSALS.get(file.getFileName().toString()));
          assertClear(e.description());
        });
  }

  private static void answeredOrRefused(Path file, String as, Runnable call) {
    try {
      call.run(); // a clean answer: the bytes were a (strange) prompt the model can take
    } catch (OwleryException e) {
      assertThat(e.code()).as("%s as %s: %s", file.getFileName(), as, e.description())
          .isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertClear(e.description());
    }
  }

  /** One sentence for a person: no stack trace, no exception class names. */
  private static void assertClear(String description) {
    assertThat(description).isNotBlank().doesNotContain("Exception", "\tat ", "\n");
  }

  private static GenerateRequest greedy(byte[] image) {
    return GenerateRequest.newBuilder().setPromptText(PROMPT).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(image))).setMaxNewTokens(4).setTemperature(0)
        .build();
  }

  /**
   * The bytes as prompt text when they are UTF-8; else (proto strings must be UTF-8, so the client
   * library refuses them before sending) as token ids, read as little-endian int32s.
   */
  private static GenerateRequest asPrompt(byte[] bytes) {
    GenerateRequest.Builder request = GenerateRequest.newBuilder().setMaxNewTokens(2).setTemperature(0);
    try {
      return request.setPromptText(StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString())
          .build();
    } catch (CharacterCodingException e) {
      ByteBuffer ints = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
      PromptTokenIds.Builder ids = PromptTokenIds.newBuilder();
      while (ints.remaining() >= Integer.BYTES) {
        ids.addTokenIds(ints.getInt());
      }
      return request.setPromptTokenIds(ids).build();
    }
  }

  private static LoadSliceRequest load(Path model) {
    return LoadSliceRequest.newBuilder().setModelDir(model.toString()).setRank(0).setWorldSize(1)
        .addPeerAddresses("127.0.0.1:1").setGroupId("bad-inputs").setMaxNumTokens(8).setMaxNumSequences(1)
        .setNumKvBlocks(4).setBlockSizeTokens(4).setKvCacheDtype(KvCacheDtype.KV_CACHE_DTYPE_F16).build();
  }

  private static List<Path> corpus() throws IOException {
    try (Stream<Path> files = Files.list(Fixtures.require("bad-inputs"))) {
      return files.filter(file -> !file.getFileName().toString().equals("README.md")).sorted().toList();
    }
  }
}
