package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.sampling.TokenLogprobs;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.testing.SyntheticLlama;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A group of three real shard workers on a model whose heads allow three but whose vocabulary
 * (512) and intermediate features (100) do not divide by it, and whose one kv head every rank
 * holds a copy of: the coordinator gathers the padded vocabulary slices [0, 171), [171, 342),
 * [342, 512) into the single-process reference's greedy ids and log-probabilities.
 */
class ThreeShardGroupTest {

  /** float32 on both sides; partial sums and the log-softmax are added in another order. */
  private static final double LOGPROB_TOLERANCE = 1e-4;
  private static final String PROMPT = "Once upon a time";
  private static final int MAX_NEW_TOKENS = 12;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void threeShardsOnASixHeadModelGiveTheSingleProcessTokensAndLogprobs(@TempDir Path tmp) throws IOException {
    // 6 query heads, 1 kv head (multi-query), vocab 512 to use stories260K's tokenizer
    Path dir = new SyntheticLlama(48, 100, 2, 6, 1, 512, 3).write(tmp.resolve("six-heads"));
    Files.copy(Fixtures.stories260k().resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
    dev.owlery.engine.model.Completion reference;
    try (OwlModel model = OwlModel.load(dir, 1, KernelsProvider.shared())) {
      reference = new InProcessGenerator(model, KvCacheDtype.F32).generate(new GenerationRequest(new Prompt.Text(PROMPT), List.of(),
          ChatTemplate.NONE, dev.owlery.engine.vision.preprocess.AspectRatioPolicy.RESIZE, SamplingParams.greedy(),
          MAX_NEW_TOKENS, true), CompletionListener.NONE);
    }
    assertThat(reference.tokenIds()).as("a comparison over every step").hasSize(MAX_NEW_TOKENS);

    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, ShardWorkerLauncher.real(), 3,
        config -> config.withPlacement(PlacementConfig.of(3, config.placement().shardModelDir())
            .withKvCacheDtype(KvCacheDtype.F32))); // float32 KV, as the single-process reference
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    Completion completion = owlery.client().generate(GenerateRequest.newBuilder().setPromptText(PROMPT)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setMaxNewTokens(MAX_NEW_TOKENS).setTemperature(0)
        .setLogprobs(true).setNumTopLogprobs(5).build());

    assertThat(completion.tokenIds()).containsExactly(Arrays.stream(reference.tokenIds()).boxed().toArray(Integer[]::new));
    assertThat(owlery.client().getClusterStatus().getGroupsList()).singleElement()
        .satisfies(group -> assertThat(group.getNodeIdsList()).containsExactly("shard-0", "shard-1", "shard-2"));
    assertThat(completion.logprobs()).hasSize(reference.tokenIds().length);
    double maxError = 0;
    for (int step = 0; step < reference.tokenIds().length; step++) {
      TokenLogprob got = completion.logprobs().get(step);
      TokenLogprobs want = TokenLogprobs.of(reference.stepLogits(), step * 512, 512, reference.tokenIds()[step], 5);
      assertThat(got.getTopLogprobsList()).extracting(TopLogprob::getTokenId).as("top ids at step %d", step)
          .containsExactly(Arrays.stream(want.topTokenIds()).boxed().toArray(Integer[]::new));
      maxError = Math.max(maxError, Math.abs(got.getLogprob() - want.logprob()));
      for (int k = 0; k < 5; k++) {
        maxError = Math.max(maxError, Math.abs(got.getTopLogprobs(k).getLogprob() - want.topLogprobs()[k]));
      }
    }
    assertThat(maxError).isLessThanOrEqualTo(LOGPROB_TOLERANCE);
  }
}
