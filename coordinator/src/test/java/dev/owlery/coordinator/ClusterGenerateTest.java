package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.GenerationHandle;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.testing.FakeShardWorkerNode;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Acceptance: a coordinator, a vision worker and two shard workers, each with its own Hazelcast
 * member on loopback, answer Generate on tiny-owl2 with the single-process reference's greedy
 * tokens and log-probabilities; a cancelled generation stops and is released on every shard.
 */
class ClusterGenerateTest {

  /**
   * The shards run the same float32 decoder as the reference on the same inputs (visual rows
   * cross the wire bit for bit), so only the summation order of the log-softmax differs.
   */
  private static final double LOGPROB_TOLERANCE = 1e-4;
  private static final String PROMPT = "USER: <|image|>Describe the image. ASSISTANT:";
  private static final int MAX_NEW_TOKENS = 8;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void greedyGenerationMatchesTheInProcessReference() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    byte[] image = Files.readAllBytes(dir.resolve("test_image.png"));
    ReferenceRun reference = ReferenceRun.of(dir, image);
    // 16-row steps: the 24-row prompt is prefilled in two chunks. Float32 KV on both sides: tensor-parallel
    // summation order moves F16-rounded cache entries by an ulp, past the logprob tolerance.
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, ShardWorkerLauncher.real(), 2,
        config -> config.withPlacement(new PlacementConfig(2, config.placement().shardModelDir(), 1, 16, 16, 0, 0,
            KvCacheDtype.F32, Duration.ofSeconds(30), Duration.ofSeconds(5), Duration.ofSeconds(60), 0)));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));

    Completion completion = owlery.client().generate(GenerateRequest.newBuilder()
        .setPromptText(PROMPT)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(image)))
        .setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE)
        .setMaxNewTokens(MAX_NEW_TOKENS)
        .setTemperature(0)
        .setLogprobs(true)
        .setNumTopLogprobs(5)
        .build());

    assertThat(completion.tokenIds()).containsExactlyElementsOf(reference.tokenIds());
    assertThat(completion.finishReason()).isEqualTo(FinishReason.FINISH_REASON_MAX_NEW_TOKENS);
    assertThat(completion.usage().getNumPromptTokens()).isEqualTo(24);
    assertThat(completion.usage().getNumImageTokens()).isEqualTo(9);
    assertThat(completion.usage().getNumCompletionTokens()).isEqualTo(MAX_NEW_TOKENS);
    assertThat(completion.usage().getTimeToFirstTokenNs()).isPositive()
        .isLessThanOrEqualTo(completion.usage().getTotalDurationNs());
    assertThat(completion.logprobs()).hasSize(MAX_NEW_TOKENS);
    double maxError = 0;
    for (int step = 0; step < MAX_NEW_TOKENS; step++) {
      TokenLogprob logprob = completion.logprobs().get(step);
      double[] expected = reference.logSoftmax(step);
      assertThat(logprob.getTokenId()).isEqualTo(reference.tokenIds().get(step));
      maxError = Math.max(maxError, Math.abs(logprob.getLogprob() - expected[logprob.getTokenId()]));
      assertThat(logprob.getTopLogprobsList()).extracting(TopLogprob::getTokenId)
          .containsExactlyElementsOf(reference.topIds(step, 5));
      for (TopLogprob top : logprob.getTopLogprobsList()) {
        maxError = Math.max(maxError, Math.abs(top.getLogprob() - expected[top.getTokenId()]));
      }
    }
    assertThat(maxError).isLessThanOrEqualTo(LOGPROB_TOLERANCE);
    // The reference strips the decoded text (spec §6); a stream cannot take back trailing spaces.
    assertThat(completion.text().strip()).isEqualTo(reference.text());

    GetClusterStatusResponse status = owlery.client().getClusterStatus();
    assertThat(status.getNodesList()).extracting(NodeStatus::getNodeId)
        .containsExactly("coordinator-0", "shard-0", "shard-1", "vision-0");
    assertThat(status.getNodesList()).filteredOn(node -> node.getRole() == NodeRole.NODE_ROLE_SHARD_WORKER)
        .extracting(NodeStatus::getGroupId, NodeStatus::getRank)
        .containsExactly(org.assertj.core.groups.Tuple.tuple("group-0", 0), org.assertj.core.groups.Tuple.tuple("group-0", 1));
    assertThat(status.getGroupsList()).singleElement().satisfies(group -> {
      assertThat(group.getNodeIdsList()).containsExactly("shard-0", "shard-1");
      assertThat(group.getModel()).isEqualTo("tiny-owl2");
      assertThat(group.getNumFreeKvBlocks()).isEqualTo(group.getNumKvBlocks());
    });
    assertThat(owlery.client().listModels()).singleElement().satisfies(model -> {
      assertThat(model.getNumReadyGroups()).isEqualTo(1);
      assertThat(model.getNumImageTokens()).isEqualTo(9);
    });
  }

  @Test
  void cancellingAGenerationStopsItAndReleasesTheSequenceOnEveryShard() throws InterruptedException {
    Path dir = Fixtures.tinyOwl2();
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, FakeShardWorkerNode.launcher(), 2, config -> config);
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    List<FakeShardWorkerNode> shards = owlery.shards().stream().map(FakeShardWorkerNode.class::cast).toList();
    CountDownLatch firstDelta = new CountDownLatch(1);
    AtomicReference<OwleryException> failure = new AtomicReference<>();

    GenerationHandle handle = owlery.client().generate(GenerateRequest.newBuilder()
        .setPromptText("Tell a long story.").setMaxNewTokens(200).setTemperature(0).build(),
        new GenerationListener() {
          @Override
          public void onDelta(GenerateDelta delta) {
            // From now on every step takes 100 ms: the cancellation comes long before 200 tokens.
            shards.forEach(shard -> shard.delaySteps(Duration.ofMillis(100)));
            firstDelta.countDown();
          }

          @Override
          public void onFinish(Completion completion) {}

          @Override
          public void onError(OwleryException error) {
            failure.set(error);
          }
        });
    assertThat(firstDelta.await(30, TimeUnit.SECONDS)).isTrue();
    handle.cancel();

    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      assertThat(shards).allSatisfy(shard -> {
        assertThat(shard.numReleased()).isEqualTo(1);
        assertThat(shard.numSequencesHeld()).isZero();
      });
      assertThat(owlery.client().getClusterStatus().getScheduler().getNumRunningSequences()).isZero();
    });
    assertThat(failure.get().code()).isEqualTo(Status.Code.CANCELLED);
    // A cancellation is not a lost shard.
    assertThat(owlery.client().getClusterStatus().getGroups(0).getState()).isEqualTo(NodeState.NODE_STATE_READY);
  }

  /** The single-process run of the same request: tokens, text and the logits of every step. */
  private record ReferenceRun(List<Integer> tokenIds, String text, float[] stepLogits, int vocabSize) {

    static ReferenceRun of(Path dir, byte[] image) {
      try (OwlModel model = OwlModel.load(dir, 1, KernelsProvider.shared())) {
        dev.owlery.engine.model.Completion completion = new InProcessGenerator(model, KvCacheDtype.F32).generate(
            new GenerationRequest(new Prompt.Text(PROMPT), List.of(image), ChatTemplate.NONE,
                dev.owlery.engine.vision.preprocess.AspectRatioPolicy.RESIZE, SamplingParams.greedy(), MAX_NEW_TOKENS,
                true),
            CompletionListener.NONE);
        return new ReferenceRun(Arrays.stream(completion.tokenIds()).boxed().toList(), completion.text(),
            completion.stepLogits(), model.config().text().vocabSize());
      }
    }

    /** Natural log-softmax of step {@code step}'s logits, in double. */
    double[] logSoftmax(int step) {
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < vocabSize; i++) {
        max = Math.max(max, stepLogits[step * vocabSize + i]);
      }
      double sum = 0;
      for (int i = 0; i < vocabSize; i++) {
        sum += Math.exp(stepLogits[step * vocabSize + i] - max);
      }
      double logSumExp = max + Math.log(sum);
      double[] out = new double[vocabSize];
      for (int i = 0; i < vocabSize; i++) {
        out[i] = stepLogits[step * vocabSize + i] - logSumExp;
      }
      return out;
    }

    /** The {@code n} ids with the largest logits at {@code step}, largest first. */
    List<Integer> topIds(int step, int n) {
      Integer[] ids = new Integer[vocabSize];
      for (int i = 0; i < vocabSize; i++) {
        ids[i] = i;
      }
      Arrays.sort(ids, (a, b) -> Float.compare(stepLogits[step * vocabSize + b], stepLogits[step * vocabSize + a]));
      return Arrays.asList(ids).subList(0, n);
    }
  }
}
