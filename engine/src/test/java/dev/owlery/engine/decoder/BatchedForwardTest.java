package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCacheDtype;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.kv.PagedKvCache;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Batched forward on stories260K: three sequences of different lengths in one pass per step (prefill
 * chunks next to single decode rows) give each sequence the logits it gets alone, and a paged cache
 * with shuffled blocks gives the logits of a contiguous one.
 */
class BatchedForwardTest {

  private static final int STEP_CAPACITY = 32;
  private static final int BLOCK_SIZE = 4;

  /**
   * One sequence's rows in one step: its ids {@code [from, from + count)}.
   *
   * @param sequence index into {@link #tokens}
   */
  record Part(int sequence, int from, int count, LogitRows rows) {}

  /** Cases 3, 4 and 2 (23-, 13- and 5-token prompts): prefill, prefill next to decode, decode, reordered. */
  private static final List<List<Part>> STEPS = List.of(
      List.of(new Part(0, 0, 10, LogitRows.LAST), new Part(1, 0, 13, LogitRows.ALL), new Part(2, 0, 5, LogitRows.LAST)),
      List.of(new Part(0, 10, 13, LogitRows.LAST), new Part(1, 13, 1, LogitRows.LAST), new Part(2, 5, 1, LogitRows.ALL)),
      List.of(new Part(0, 23, 1, LogitRows.LAST), new Part(1, 14, 1, LogitRows.LAST), new Part(2, 6, 1, LogitRows.LAST)),
      List.of(new Part(2, 7, 1, LogitRows.LAST), new Part(0, 24, 1, LogitRows.LAST)));

  private static LlamaConfig config;
  private static Checkpoint checkpoint;
  /** Per sequence: prompt ids then run.c's greedy ids. */
  private static int[][] tokens;
  private static VectorKernels vectorKernels;

  @BeforeAll
  static void open() throws IOException {
    Path dir = Fixtures.stories260k();
    config = ModelConfig.load(dir).text();
    checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    JsonNode cases = new ObjectMapper().readTree(dir.getParent().resolve("expected.json").toFile()).get("cases");
    tokens = new int[3][];
    int[] caseIndexes = {3, 4, 2};
    for (int s = 0; s < 3; s++) {
      JsonNode c = cases.get(caseIndexes[s]);
      int[] prompt = Stories260kDecoderTest.ints(c.get("prompt_ids"));
      int[] generated = Stories260kDecoderTest.ints(c.get("generated_ids"));
      tokens[s] = new int[prompt.length + generated.length];
      System.arraycopy(prompt, 0, tokens[s], 0, prompt.length);
      System.arraycopy(generated, 0, tokens[s], prompt.length, generated.length);
    }
    vectorKernels = new VectorKernels(2);
  }

  @AfterAll
  static void close() {
    if (checkpoint != null) {
      checkpoint.close();
      vectorKernels.close();
    }
  }

  private static DecoderSlice slice(Kernels kernels) {
    return new DecoderSlice(checkpoint, config, Collective.single(), kernels, STEP_CAPACITY);
  }

  private static KvCache[] contiguous(DecoderSlice slice) {
    return new KvCache[] {slice.newKvCache(64, KvCacheDtype.F32), slice.newKvCache(64, KvCacheDtype.F32),
        slice.newKvCache(64, KvCacheDtype.F32)};
  }

  /** Caches of 16 blocks each, the pool's 48 blocks handed out in a shuffled order. */
  private static KvCache[] paged(DecoderSlice slice) {
    KvBlockPool pool = slice.newKvBlockPool(48, BLOCK_SIZE, KvCacheDtype.F32);
    List<Integer> ids = new ArrayList<>();
    for (int b = 0; b < pool.numBlocks(); b++) {
      ids.add(b);
    }
    Collections.shuffle(ids, new Random(42));
    KvCache[] caches = new KvCache[3];
    for (int s = 0; s < 3; s++) {
      PagedKvCache cache = pool.newSequenceCache();
      for (int b = 0; b < 16; b++) {
        cache.appendBlock(ids.get(s * 16 + b));
      }
      caches[s] = cache;
    }
    return caches;
  }

  private static Modality[] text(int n) {
    Modality[] modalities = new Modality[n];
    Arrays.fill(modalities, Modality.TEXT);
    return modalities;
  }

  private static int logitRows(Part part) {
    return part.rows() == LogitRows.ALL ? part.count() : 1;
  }

  /** Every step as one batch; returns per step, per part, its logits. */
  static List<List<float[]>> runBatched(DecoderSlice slice, KvCache[] caches) {
    int vocab = config.vocabSize();
    int hidden = config.hiddenSize();
    DecoderBatch batch = new DecoderBatch(3);
    float[] inputs = new float[STEP_CAPACITY * hidden];
    float[] logits = new float[STEP_CAPACITY * vocab];
    List<List<float[]>> out = new ArrayList<>();
    for (List<Part> step : STEPS) {
      batch.clear();
      int row = 0;
      for (Part p : step) {
        for (int k = 0; k < p.count(); k++) {
          slice.embed(tokens[p.sequence()][p.from() + k], inputs, (row + k) * hidden);
        }
        batch.add(caches[p.sequence()], p.count(), p.rows());
        row += p.count();
      }
      slice.forward(batch, inputs, 0, text(row), logits, vocab, 0);
      List<float[]> parts = new ArrayList<>();
      int logitRow = 0;
      for (Part p : step) {
        parts.add(Arrays.copyOfRange(logits, logitRow * vocab, (logitRow + logitRows(p)) * vocab));
        logitRow += logitRows(p);
      }
      out.add(parts);
    }
    return out;
  }

  /** Every part of every step run alone through the single-sequence forward. */
  static List<List<float[]>> runAlone(DecoderSlice slice, KvCache[] caches) {
    int vocab = config.vocabSize();
    int hidden = config.hiddenSize();
    List<List<float[]>> out = new ArrayList<>();
    for (List<Part> step : STEPS) {
      List<float[]> parts = new ArrayList<>();
      for (Part p : step) {
        float[] inputs = new float[p.count() * hidden];
        for (int k = 0; k < p.count(); k++) {
          slice.embed(tokens[p.sequence()][p.from() + k], inputs, k * hidden);
        }
        float[] logits = new float[logitRows(p) * vocab];
        slice.forward(inputs, 0, text(p.count()), p.count(), caches[p.sequence()], p.rows(), logits, vocab, 0);
        parts.add(logits);
      }
      out.add(parts);
    }
    return out;
  }

  private static void assertBitIdentical(List<List<float[]>> actual, List<List<float[]>> expected) {
    for (int s = 0; s < STEPS.size(); s++) {
      for (int p = 0; p < STEPS.get(s).size(); p++) {
        assertThat(actual.get(s).get(p)).as("step %d part %s", s, STEPS.get(s).get(p))
            .containsExactly(expected.get(s).get(p));
      }
    }
  }

  @Test
  void batchOfThreeSequencesGivesEachTheLogitsItGetsAloneBitForBitWithScalarKernels() {
    DecoderSlice batched = slice(new ScalarKernels());
    DecoderSlice alone = slice(new ScalarKernels());
    assertBitIdentical(runBatched(batched, contiguous(batched)), runAlone(alone, contiguous(alone)));
  }

  @Test
  void batchOfThreeSequencesGivesEachTheLogitsItGetsAloneWithinFp32RoundingWithVectorKernels() {
    DecoderSlice batched = slice(vectorKernels);
    DecoderSlice alone = slice(vectorKernels);
    List<List<float[]>> actual = runBatched(batched, contiguous(batched));
    List<List<float[]>> expected = runAlone(alone, contiguous(alone));
    double worst = 0;
    for (int s = 0; s < STEPS.size(); s++) {
      for (int p = 0; p < STEPS.get(s).size(); p++) {
        float[] a = actual.get(s).get(p);
        float[] e = expected.get(s).get(p);
        double maxAbs = 0;
        double maxError = 0;
        for (int i = 0; i < e.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(e[i]));
          maxError = Math.max(maxError, Math.abs(a[i] - e[i]));
        }
        worst = Math.max(worst, maxError / maxAbs);
      }
    }
    // a row computed in a batch may take the 4-token tile kernel where alone it takes the matvec
    // one (or the reverse): the same products summed in another order, fp32 rounding only
    assertThat(worst).as("max |batched - alone| / max |logit|").isLessThan(1e-5);
  }

  @Test
  void pagedCacheWithShuffledBlocksGivesTheLogitsOfAContiguousCacheBitForBit() {
    DecoderSlice pagedSlice = slice(new ScalarKernels());
    DecoderSlice contiguousSlice = slice(new ScalarKernels());
    KvCache[] pagedCaches = paged(pagedSlice);
    assertBitIdentical(runBatched(pagedSlice, pagedCaches), runBatched(contiguousSlice, contiguous(contiguousSlice)));
    assertThat(pagedCaches[0].length()).isEqualTo(25);
    assertThat(pagedCaches[0].capacity()).isEqualTo(16 * BLOCK_SIZE);
  }

  @Test
  void batchPastTheStepCapacityIsRefusedBeforeAnythingRuns() {
    DecoderSlice slice = slice(new ScalarKernels());
    KvCache[] caches = contiguous(slice);
    DecoderBatch batch = new DecoderBatch(2);
    batch.add(caches[0], 20, LogitRows.LAST);
    batch.add(caches[1], 13, LogitRows.LAST);
    float[] inputs = new float[33 * config.hiddenSize()];
    assertThatThrownBy(() -> slice.forward(batch, inputs, 0, text(33), new float[2 * 512], 512, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a batch must have between 1 and the slice's step capacity (32) rows. Given: 33");
    assertThat(caches[0].length()).isZero();
    assertThatThrownBy(() -> batch.add(caches[0], 1, LogitRows.LAST)).hasMessageContaining("at most 2 sequences");
  }
}
