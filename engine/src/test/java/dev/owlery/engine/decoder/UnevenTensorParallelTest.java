package dev.owlery.engine.decoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.SyntheticLlama;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Group sizes that divide the heads but not the vocabulary or the intermediate features, and
 * groups with more ranks than kv heads, reproduce one rank: on synthetic checkpoints (6 heads with
 * vocab 32000 over 3 ranks, as {@code owlery local --shards 3} was refused for; 6/3 and 8/2 kv
 * heads over up to 8 ranks) the in-process decoder's prompt logits equal N = 1's to fp32 rounding
 * and its greedy ids exactly.
 */
class UnevenTensorParallelTest {

  private static final int NUM_PROMPT = 13;
  private static final int MAX_NEW_TOKENS = 8;

  @TempDir static Path tmp;
  /** Each model written once for the class. */
  private static final Map<SyntheticLlama, Path> WRITTEN = new HashMap<>();
  private static VectorKernels kernels;

  /** vocab 32000 and intermediate 100 divide by neither 3 nor 6. */
  private static final SyntheticLlama MHA_6 = new SyntheticLlama(48, 100, 2, 6, 6, 32_000, 6);
  private static final SyntheticLlama GQA_6_3 = new SyntheticLlama(48, 100, 2, 6, 3, 500, 63);
  /** What {@code make_synthetic_llama.py --heads 8 --kv-heads 2} makes, small. */
  private static final SyntheticLlama GQA_8_2 = new SyntheticLlama(64, 172, 2, 8, 2, 500, 82);

  @BeforeAll
  static void start() {
    kernels = new VectorKernels(2);
  }

  @AfterAll
  static void stop() {
    kernels.close();
  }

  static Stream<Arguments> splits() {
    return Stream.of(
        Arguments.of("6 heads, vocab 32000", MHA_6, 3, 2),
        Arguments.of("6 heads, vocab 32000", MHA_6, 6, 1),
        Arguments.of("6 heads, 3 kv heads, vocab 500", GQA_6_3, 3, 1),
        Arguments.of("6 heads, 3 kv heads, vocab 500", GQA_6_3, 6, 1),
        Arguments.of("8 heads, 2 kv heads, vocab 500", GQA_8_2, 4, 1),
        Arguments.of("8 heads, 2 kv heads, vocab 500", GQA_8_2, 8, 1));
  }

  private record Run(float[] promptLogits, int[] greedyIds) {}

  /** All-prompt logits (in a buffer exactly [numPrompt, vocabSize]) and greedy ids with {@code n} ranks. */
  private static Run run(Checkpoint checkpoint, LlamaConfig config, int n, int expectedLocalKvHeads) {
    int[] promptIds = new SplittableRandom(7).ints(NUM_PROMPT, 3, config.vocabSize()).toArray();
    try (Decoder decoder = Decoder.load(checkpoint, config, n, kernels, 4)) {
      float[] embeds = new float[NUM_PROMPT * config.hiddenSize()];
      decoder.embed(promptIds, 0, NUM_PROMPT, embeds, 0);
      Modality[] modalities = new Modality[NUM_PROMPT];
      Arrays.fill(modalities, Modality.TEXT);
      float[] logits = new float[NUM_PROMPT * config.vocabSize()];
      DecoderSequence sequence = decoder.newSequence();
      decoder.forward(sequence, embeds, 0, modalities, NUM_PROMPT, LogitRows.ALL, logits);
      for (int r = 0; r < n; r++) {
        assertThat(sequence.cache(r).numKvHeads()).as("kv heads cached by rank %d of %d", r, n)
            .isEqualTo(expectedLocalKvHeads);
      }
      GenerationResult result = new Generator(decoder).generate(decoder.newSequence(), promptIds,
          new Sampler(SamplingParams.greedy(), config.vocabSize()), new StopCondition(MAX_NEW_TOKENS, 0, new int[0]),
          (id, stepLogits) -> {});
      return new Run(logits, result.tokenIds());
    }
  }

  @ParameterizedTest(name = "{0} over {2} ranks")
  @MethodSource("splits")
  void ranksReproduceASingleRank(String name, SyntheticLlama model, int n, int localKvHeads) {
    Path dir = WRITTEN.computeIfAbsent(model, m -> m.write(tmp.resolve(name.replaceAll("\\W+", "-"))));
    LlamaConfig config = ModelConfig.load(dir).text();
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))) {
      Run single = run(checkpoint, config, 1, config.numKvHeads());
      Run split = run(checkpoint, config, n, localKvHeads);
      double maxLogit = 0;
      double maxError = 0;
      for (int i = 0; i < single.promptLogits().length; i++) {
        maxLogit = Math.max(maxLogit, Math.abs(single.promptLogits()[i]));
        maxError = Math.max(maxError, Math.abs(split.promptLogits()[i] - single.promptLogits()[i]));
      }
      // the same float32 math with the partial sums of o_proj/down_proj added in another order
      assertThat(maxError / maxLogit).as("relative logits error with %d ranks", n).isLessThan(1e-5);
      assertThat(split.greedyIds()).as("greedy ids with %d ranks", n).containsExactly(single.greedyIds());
    }
  }

  @Test
  void kvHeadsThatDoNotDivideTheRanksOrTheirMultipleAreRefusedBeforeLoading() {
    // 12 heads split over 6 ranks, but 6 is no multiple of the 4 kv heads, nor do they divide by 6
    Path dir = new SyntheticLlama(48, 96, 1, 12, 4, 100, 1).write(tmp.resolve("12-4"));
    LlamaConfig config = ModelConfig.load(dir).text();
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))) {
      assertThatThrownBy(() -> Decoder.load(checkpoint, config, 6, kernels, 4))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("num_key_value_heads (4) and the tensor-parallel size (6) must divide one another");
    }
  }
}
