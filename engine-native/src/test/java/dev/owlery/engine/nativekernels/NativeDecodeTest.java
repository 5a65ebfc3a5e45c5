package dev.owlery.engine.nativekernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.StopCondition;
import dev.owlery.engine.decoder.Generator;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The native kernels decoding stories260K (run.c's greedy cases), next to the vector kernels on the same weights. */
class NativeDecodeTest {

  /** Measured 0.025 (30 products of q, k, v, o, gate and up in BF16; down's 172 columns stay float32). */
  private static final double BF16_PROMPT_LOGITS_BOUND = 0.1;

  @Test
  void theNativeKernelSetIsFoundThroughTheEnginesProvider() {
    Kernels kernels = KernelsProvider.create(KernelSet.parse("native"), 2);
    try {
      assertThat(kernels).isInstanceOf(NativeKernels.class);
      assertThat(kernels.name()).isEqualTo(NativeTesting.library().hasVnni() ? "native-vnni" : "native-avx2");
    } finally {
      ((NativeKernels) kernels).close();
    }
    if (NativeTesting.library().hasBf16()) {
      try (NativeKernels bf16 = (NativeKernels) KernelsProvider.create(KernelSet.parse("native-bf16"), 2)) {
        assertThat(bf16.name()).endsWith("-bf16");
      }
    } else {
      assertThatThrownBy(() -> KernelsProvider.create(KernelSet.NATIVE_BF16, 2)).hasMessageContaining("AVX512_BF16");
    }
  }

  /** One greedy case: the ids, and at each step the gap between the two largest logits. */
  private record Run(int[] ids, float[] margins, double promptLogitError) {}

  private static List<Run> greedyRuns(WeightFormat format, Kernels kernels) throws IOException {
    Path dir = Fixtures.stories260k();
    ModelConfig config = ModelConfig.load(dir);
    List<Run> runs = new ArrayList<>();
    try (Checkpoint held = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors")).withWeightFormat(format);
        Decoder decoder = Decoder.load(held, config, 1, kernels)) {
      for (JsonNode c : cases()) {
        int steps = c.get("generated_ids").size();
        float[] margins = new float[steps];
        float[] first = new float[config.text().vocabSize()];
        int[] step = {0};
        int[] ids = new Generator(decoder).generate(decoder.newSequence(KvCacheDtype.F32), ints(c.get("prompt_ids")),
            new Sampler(SamplingParams.greedy(), config.text().vocabSize()), new StopCondition(steps, 0, new int[0]),
            (id, logits) -> {
              if (step[0] == 0) {
                System.arraycopy(logits, 0, first, 0, first.length);
              }
              float[] sorted = logits.clone();
              Arrays.sort(sorted);
              margins[step[0]++] = sorted[sorted.length - 1] - sorted[sorted.length - 2];
            }).tokenIds();
        JsonNode expected = c.get("logits_last_prompt_position");
        double error = 0;
        for (int v = 0; v < first.length; v++) {
          error = Math.max(error, Math.abs(first[v] - expected.get(v).asDouble()));
        }
        runs.add(new Run(ids, margins, error));
      }
    }
    return runs;
  }

  private static JsonNode cases() throws IOException {
    return new ObjectMapper().readTree(Fixtures.stories260k().getParent().resolve("expected.json").toFile()).get("cases");
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  private static int common(int[] a, int[] b) {
    int same = 0;
    while (same < Math.min(a.length, b.length) && a[same] == b[same]) {
      same++;
    }
    return same;
  }

  private static List<Run> runs(WeightFormat format, boolean nativeKernels) throws IOException {
    try (AutoCloseable closing = nativeKernels ? new NativeKernels(NativeTesting.library(), 2, true, true, false)
        : new VectorKernels(2)) {
      return greedyRuns(format, (Kernels) closing);
    } catch (IOException | RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * F16 products differ from the vector kernels' only in the order of their float32 sums: every
   * case keeps run.c's greedy ids, the 256-token one included (measured).
   */
  @Test
  void f16DecodeKeepsRunCsGreedyIds() throws IOException {
    List<Run> runs = runs(WeightFormat.F16, true);
    int i = 0;
    for (JsonNode c : cases()) {
      assertThat(runs.get(i).ids()).as("case %d", i).containsExactly(ints(c.get("generated_ids")));
      i++;
    }
  }

  /**
   * Q8_0 weights times activations quantized to Q8_0, the prompt on AMX and decode on VNNI
   * (stories260K's rows are only two blocks of 32, so each row's activations carry two 8-bit scales:
   * as coarse as this arithmetic gets), against the vector kernels' Q8_0 weights times float32
   * activations. Measured: five of the seven cases give the vector kernels' greedy ids throughout;
   * case 6 departs at step 19, where the vector kernels' two best logits were 0.004 apart (logits
   * about 10), the 256-token case at step 231 (gap 0.065; both had left run.c's ids at 114). The
   * last-prompt logits are 0.18-0.30 from run.c's (the vector kernels' Q8_0: 0.13-0.19). Held here:
   * every case follows the vector kernels' ids for at least 16 steps and until a step whose two best
   * logits there were within 0.1 of each other, five cases throughout, and the last-prompt logits
   * within 0.45 of run.c's: the vector kernels' bound of 0.3 for Q8_0 weights, half again for
   * activations rounded to the same step (a misread scale or block moves them by whole units).
   */
  @Test
  void q8_0DecodeFollowsTheVectorKernelsUntilANearTie() throws IOException {
    int identical = followsTheVectorKernelsUntilANearTie(WeightFormat.Q8_0, 16, 0.45);
    assertThat(identical).as("cases identical to the vector kernels' ids").isGreaterThanOrEqualTo(5);
  }

  /**
   * Q4_0 weights times activations quantized to Q8_0, the prompt on AVX-512 VNNI (the vector
   * kernels' where the CPU lacks it) and decode on the one-token kernel. Measured (Zen 5): every case
   * follows the vector kernels' Q4_0 ids for 16 to 64 steps and parts only where their two best
   * logits were 0.002-0.018 apart; one case (6) keeps them throughout; last-prompt logits 1.92-3.29
   * from run.c's, within 0.11 of the vector kernels' 1.93-3.21 in every case. Held: the ids part
   * only at a near tie, after at least the first token (at 4 bits the near ties come early: one case
   * parts at step 16, where 16 steps is the Q8_0 case's floor), and the logits within the vector
   * kernels' own bound for Q4_0 weights on this model (4, Stories260kDecoderTest).
   */
  @Test
  void q4_0DecodeFollowsTheVectorKernelsUntilANearTie() throws IOException {
    followsTheVectorKernelsUntilANearTie(WeightFormat.Q4_0, 1, 4);
  }

  /**
   * native-bf16 on BF16 weights: a prompt of more than 32 tokens (case 6's prompt and the first 24
   * ids run.c generated after it, 50 tokens) runs its products in BF16 arithmetic, the activations
   * rounded to BF16 (and its attention in BF16), against the vector kernels on the same weights
   * (float32 activations). The last-prompt logits (magnitude about 10) move by the roundings: more
   * than float32 sums in another order move them (about 1e-5), less than the units a misread row or
   * token would give.
   */
  @Test
  void bf16PromptProductsMoveTheLogitsByTheActivationsRounding() throws IOException {
    NativeCpuLibrary library = NativeTesting.library();
    if (!library.hasBf16()) {
      assertThatThrownBy(() -> new NativeKernels(library, 2, true, true, true)).hasMessageContaining("AVX512_BF16");
      return;
    }
    JsonNode c = cases().get(6);
    int[] prompt = new int[c.get("prompt_ids").size() + 24];
    for (int i = 0; i < prompt.length; i++) {
      JsonNode from = i < c.get("prompt_ids").size() ? c.get("prompt_ids").get(i)
          : c.get("generated_ids").get(i - c.get("prompt_ids").size());
      prompt[i] = from.asInt();
    }
    AtomicInteger bf16Products = new AtomicInteger();
    float[] bf16;
    float[] vector;
    try (NativeKernels kernels = new NativeKernels(library, 2, true, true, true)) {
      bf16 = lastPromptLogits(prompt, new ForwardingKernels() {
        @Override
        protected Kernels delegate() {
          return kernels;
        }

        @Override
        public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
          if (numTokens > NativeKernels.HALF_MAX_TOKENS && kernels.runsNatively(w, numTokens)) {
            bf16Products.incrementAndGet();
          }
          kernels.matmul(w, x, xOffset, out, outOffset, numTokens);
        }
      });
    }
    try (VectorKernels kernels = new VectorKernels(2)) {
      vector = lastPromptLogits(prompt, kernels);
    }
    double moved = 0;
    for (int v = 0; v < vector.length; v++) {
      moved = Math.max(moved, Math.abs(bf16[v] - vector[v]));
    }
    System.out.printf("stories260K BF16, %d-token prompt: last-prompt logits moved %.4f by native-bf16 (%d products "
        + "in BF16 arithmetic)%n", prompt.length, moved, bf16Products.get());
    assertThat(bf16Products.get()).as("products in BF16 arithmetic").isPositive();
    assertThat(moved).isGreaterThan(1e-3).isLessThan(BF16_PROMPT_LOGITS_BOUND);
  }

  private static float[] lastPromptLogits(int[] prompt, Kernels kernels) throws IOException {
    Path dir = Fixtures.stories260k();
    ModelConfig config = ModelConfig.load(dir);
    try (Checkpoint held = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))
        .withWeightFormat(WeightFormat.BF16); Decoder decoder = Decoder.load(held, config, 1, kernels)) {
      int hidden = config.text().hiddenSize();
      float[] embeds = new float[prompt.length * hidden];
      decoder.embed(prompt, 0, prompt.length, embeds, 0);
      Modality[] text = new Modality[prompt.length];
      Arrays.fill(text, Modality.TEXT);
      float[] logits = new float[config.text().vocabSize()];
      decoder.forward(decoder.newSequence(KvCacheDtype.F32), embeds, 0, text, prompt.length, LogitRows.LAST, logits);
      return logits;
    }
  }

  /**
   * Each case follows the vector kernels' ids (same weights) for at least {@code minSteps} steps and
   * until a step whose two best logits there were within 0.1 of each other, with last-prompt logits
   * within {@code logitBound} of run.c's; returns how many cases kept the vector kernels' ids throughout.
   */
  private static int followsTheVectorKernelsUntilANearTie(WeightFormat format, int minSteps, double logitBound)
      throws IOException {
    List<Run> vector = runs(format, false);
    List<Run> nativeRuns = runs(format, true);
    int identical = 0;
    for (int i = 0; i < vector.size(); i++) {
      int[] expected = vector.get(i).ids();
      int same = common(nativeRuns.get(i).ids(), expected);
      System.out.printf("stories260K %s, case %d: %d of %d greedy ids as the vector kernels'%s; last-prompt logits "
          + "%.3f from run.c's (vector kernels %.3f)%n", format, i, same, expected.length, same < expected.length
          ? ", their logit gap there %.3f".formatted(vector.get(i).margins()[same]) : "",
          nativeRuns.get(i).promptLogitError(), vector.get(i).promptLogitError());
      assertThat(same).as("case %d: steps with the vector kernels' ids", i).isGreaterThanOrEqualTo(minSteps);
      if (same < expected.length) {
        assertThat(vector.get(i).margins()[same]).as("case %d: the vector kernels' logit gap where the ids part", i)
            .isLessThan(0.1f);
      } else {
        identical++;
      }
      assertThat(nativeRuns.get(i).promptLogitError()).as("case %d: last-prompt logits from run.c's", i)
          .isLessThan(logitBound).isGreaterThan(0);
    }
    return identical;
  }
}
