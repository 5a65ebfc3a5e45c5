package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCacheDtype;
import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Modality-Adaptive decoder against the official mPLUG-Owl2 code (tiny-owl2 fixture, fp32):
 * the reference spliced {@code llm.inputs_embeds} and modality indicators go in, logits, KV cache
 * and the greedy continuation come out. The comparisons with the official code use a float32 KV
 * cache, as the fixture was made; {@link #anF16KvCacheMovesTheLogitsByLessThanItsStatedBound} states
 * what the default F16 cache changes.
 */
class TinyOwl2DecoderTest {

  /** Fixture README: logits and step logits 1e-3 (|logits| <= 25; numpy fp32 re-implementation 1.6e-5). */
  private static final double LOGITS_TOLERANCE = 1e-3;
  /** Fixture README: LLM hidden states (and the KV cache derived from them) 5e-4. */
  private static final double HIDDEN_TOLERANCE = 5e-4;
  private static final int NUM_POSITIONS = 24;
  /**
   * Max |logits(F16 KV) - logits(F32 KV)| over every prompt position and decode step of tiny-owl2
   * (|logits| <= 25): measured 6.6e-3 on the prompt and 6.4e-3 over the decode steps (vector
   * kernels); the bound leaves a factor of about two. docs/model.md quotes it.
   */
  private static final double F16_KV_LOGITS_BOUND = 1.5e-2;

  private static ModelConfig config;
  private static Checkpoint model;
  private static Checkpoint reference;
  private static VectorKernels kernels;
  private static float[] inputsEmbeds;
  private static Modality[] modalities;

  @BeforeAll
  static void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir);
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
    kernels = new VectorKernels(2);
    inputsEmbeds = reference.tensor("llm.inputs_embeds", 1, NUM_POSITIONS, 64).toFloatArray();
    long[] indicators = reference.tensor("llm.modality_indicators", 1, NUM_POSITIONS).toLongArray();
    modalities = new Modality[NUM_POSITIONS];
    for (int i = 0; i < NUM_POSITIONS; i++) {
      modalities[i] = Modality.ofIndicator(indicators[i]);
    }
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
      reference.close();
      kernels.close();
    }
  }

  private static double maxAbsDiff(float[] a, int aOffset, float[] b, int bOffset, int n) {
    double max = 0;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, Math.abs(a[aOffset + i] - b[bOffset + i]));
    }
    return max;
  }

  private static float[] promptLogits(Decoder decoder, DecoderSequence sequence, Modality[] rowModalities) {
    float[] logits = new float[NUM_POSITIONS * config.text().vocabSize()];
    decoder.forward(sequence, inputsEmbeds, 0, rowModalities, NUM_POSITIONS, LogitRows.ALL, logits);
    return logits;
  }

  @ParameterizedTest(name = "tensor-parallel size {0}")
  @ValueSource(ints = {1, 2})
  void logitsOfEveryPromptPositionAndKvCacheMatchTheOfficialCode(int n) {
    try (Decoder decoder = Decoder.load(model, config.text(), n, kernels, 8)) {
      DecoderSequence sequence = decoder.newSequence(KvCacheDtype.F32);
      float[] logits = promptLogits(decoder, sequence, modalities);
      float[] expected = reference.tensor("logits").toFloatArray();
      assertThat(maxAbsDiff(logits, 0, expected, 0, expected.length)).isLessThan(LOGITS_TOLERANCE);
      // keys are cached after RoPE, [batch, heads, pos, headDim] in the fixture
      int headDim = config.text().headDim();
      float[] cached = new float[headDim];
      for (int layer = 0; layer < config.text().numLayers(); layer++) {
        float[] keys = reference.tensor("llm.past_key." + layer).toFloatArray();
        float[] values = reference.tensor("llm.past_value." + layer).toFloatArray();
        for (int head = 0; head < config.text().numKvHeads(); head++) {
          KvCache cache = sequence.cache(head / (config.text().numKvHeads() / n));
          int localHead = head % (config.text().numKvHeads() / n);
          for (int p = 0; p < NUM_POSITIONS; p++) {
            int ref = (head * NUM_POSITIONS + p) * headDim;
            cache.layer(layer).readKeys(localHead, p, 1, cached, 0);
            assertThat(maxAbsDiff(cached, 0, keys, ref, headDim))
                .as("key layer %d head %d pos %d", layer, head, p).isLessThan(HIDDEN_TOLERANCE);
            cache.layer(layer).readValues(localHead, p, 1, cached, 0);
            assertThat(maxAbsDiff(cached, 0, values, ref, headDim))
                .as("value layer %d head %d pos %d", layer, head, p).isLessThan(HIDDEN_TOLERANCE);
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "tensor-parallel size {0}")
  @ValueSource(ints = {1, 2})
  void greedyContinuationAndStepLogitsMatchTheOfficialGenerate(int n) {
    long[] expectedTokens = reference.tensor("generate.tokens").toLongArray();
    float[] stepLogits = reference.tensor("generate.step_logits").toFloatArray();
    int vocab = config.text().vocabSize();
    List<Double> errors = new ArrayList<>();
    try (Decoder decoder = Decoder.load(model, config, n, kernels)) {
      TokenListener listener = (id, logits) ->
          errors.add(maxAbsDiff(logits, 0, stepLogits, errors.size() * vocab, vocab));
      GenerationResult result = new Generator(decoder).generate(decoder.newSequence(KvCacheDtype.F32), inputsEmbeds, modalities,
          NUM_POSITIONS, new Sampler(SamplingParams.greedy(), vocab),
          StopCondition.eosOrLength(config.text().eosTokenId(), expectedTokens.length), listener);
      assertThat(Arrays.stream(result.tokenIds()).asLongStream().toArray()).containsExactly(expectedTokens);
      assertThat(result.finishReason()).isEqualTo(FinishReason.MAX_NEW_TOKENS);
    }
    assertThat(errors).hasSize(expectedTokens.length).allSatisfy(e -> assertThat(e).isLessThan(LOGITS_TOLERANCE));
  }

  @Test
  void textOnlyPromptEmbedsExactlyAndMatchesTheOfficialLastLogits() {
    int[] ids = Arrays.stream(reference.tensor("textonly.input_ids").toLongArray()).mapToInt(Math::toIntExact).toArray();
    float[] expectedEmbeds = reference.tensor("textonly.inputs_embeds").toFloatArray();
    float[] expectedLogits = reference.tensor("textonly.last_logits").toFloatArray();
    try (Decoder decoder = Decoder.load(model, config, 1, kernels)) {
      float[] embeds = new float[expectedEmbeds.length];
      decoder.embed(ids, 0, ids.length, embeds, 0);
      assertThat(embeds).containsExactly(expectedEmbeds); // pure copies: tolerance 0
      Modality[] text = new Modality[ids.length];
      Arrays.fill(text, Modality.TEXT);
      float[] logits = new float[config.text().vocabSize()];
      decoder.forward(decoder.newSequence(KvCacheDtype.F32), embeds, 0, text, ids.length, LogitRows.LAST, logits);
      assertThat(maxAbsDiff(logits, 0, expectedLogits, 0, logits.length)).isLessThan(LOGITS_TOLERANCE);
    }
  }

  @Test
  void imageRowsThroughTheTextWeightsChangeTheLogits() {
    Modality[] allText = new Modality[NUM_POSITIONS];
    Arrays.fill(allText, Modality.TEXT);
    assertThat(Arrays.copyOfRange(modalities, 5, 14)).containsOnly(Modality.VISUAL);
    try (Decoder decoder = Decoder.load(model, config, 1, kernels)) {
      float[] routed = promptLogits(decoder, decoder.newSequence(KvCacheDtype.F32), modalities);
      float[] flipped = promptLogits(decoder, decoder.newSequence(KvCacheDtype.F32), allText);
      int vocab = config.text().vocabSize();
      int last = (NUM_POSITIONS - 1) * vocab;
      // fixture README: routing every token through the text branch moves the last logits by 16.9
      assertThat(maxAbsDiff(routed, last, flipped, last, vocab)).isGreaterThan(1.0);
      // rows before the image are unaffected (causal attention); only the matmul tiling of the
      // k/v runs differs, which reorders fp32 sums (~1e-6)
      assertThat(maxAbsDiff(routed, 0, flipped, 0, 5 * vocab)).isLessThan(1e-4);
    }
  }

  @Test
  void anF16KvCacheMovesTheLogitsByLessThanItsStatedBound() {
    long[] expectedTokens = reference.tensor("generate.tokens").toLongArray();
    int vocab = config.text().vocabSize();
    try (Decoder decoder = Decoder.load(model, config, 1, kernels)) {
      float[] exact = promptLogits(decoder, decoder.newSequence(KvCacheDtype.F32), modalities);
      float[] rounded = promptLogits(decoder, decoder.newSequence(KvCacheDtype.F16), modalities);
      double promptDiff = maxAbsDiff(exact, 0, rounded, 0, exact.length);
      List<float[]> exactSteps = new ArrayList<>();
      List<float[]> roundedSteps = new ArrayList<>();
      GenerationResult withF32 = greedy(decoder, KvCacheDtype.F32, expectedTokens.length, exactSteps);
      GenerationResult withF16 = greedy(decoder, KvCacheDtype.F16, expectedTokens.length, roundedSteps);
      double stepDiff = 0;
      for (int i = 0; i < exactSteps.size(); i++) {
        stepDiff = Math.max(stepDiff, maxAbsDiff(exactSteps.get(i), 0, roundedSteps.get(i), 0, vocab));
      }
      assertThat(promptDiff).isPositive().isLessThan(F16_KV_LOGITS_BOUND); // really rounded, and by this much
      assertThat(stepDiff).isLessThan(F16_KV_LOGITS_BOUND);
      assertThat(withF16.tokenIds()).containsExactly(withF32.tokenIds());
    }
  }

  private static GenerationResult greedy(Decoder decoder, KvCacheDtype dtype, int numTokens, List<float[]> stepLogits) {
    TokenListener listener = (id, logits) -> stepLogits.add(logits.clone());
    return new Generator(decoder).generate(decoder.newSequence(dtype), inputsEmbeds, modalities, NUM_POSITIONS,
        new Sampler(SamplingParams.greedy(), config.text().vocabSize()),
        StopCondition.eosOrLength(config.text().eosTokenId(), numTokens), listener);
  }
}
