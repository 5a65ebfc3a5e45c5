package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCacheDtype;
import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.kv.PagedKvCache;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * tiny-owl2: a prompt with image rows (visual k/v and norm copies) batched with another sequence's
 * text rows gives both the logits they get alone, and the image prompt still matches the official
 * code.
 */
class TinyOwl2BatchedForwardTest {

  /** Fixture README: logits 1e-3 (|logits| <= 25). */
  private static final double LOGITS_TOLERANCE = 1e-3;
  private static final int NUM_POSITIONS = 24;

  private static LlamaConfig config;
  private static Checkpoint model;
  private static Checkpoint reference;
  /** The reference prompt: 24 rows, 9 of them image rows. */
  private static float[] imagePrompt;
  private static Modality[] imageModalities;
  /** The text-only prompt, 15 rows. */
  private static float[] textPrompt;

  @BeforeAll
  static void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir).text();
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
    imagePrompt = reference.tensor("llm.inputs_embeds", 1, NUM_POSITIONS, 64).toFloatArray();
    long[] indicators = reference.tensor("llm.modality_indicators", 1, NUM_POSITIONS).toLongArray();
    imageModalities = new Modality[NUM_POSITIONS];
    for (int i = 0; i < NUM_POSITIONS; i++) {
      imageModalities[i] = Modality.ofIndicator(indicators[i]);
    }
    textPrompt = reference.tensor("textonly.inputs_embeds").toFloatArray();
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
      reference.close();
    }
  }

  private static Modality[] text(int n) {
    Modality[] m = new Modality[n];
    Arrays.fill(m, Modality.TEXT);
    return m;
  }

  @Test
  void imageRowsBatchedWithAnotherSequencesTextRowsGiveTheLogitsEachGetsAlone() {
    int vocab = config.vocabSize();
    int hidden = config.hiddenSize();
    int textRows = textPrompt.length / hidden;
    DecoderSlice batched = new DecoderSlice(model, config, Collective.single(), new ScalarKernels(), 48);
    KvBlockPool pool = batched.newKvBlockPool(16, 4, KvCacheDtype.F32);
    PagedKvCache textCache = pool.newSequenceCache();
    PagedKvCache imageCache = pool.newSequenceCache();
    for (int b = 0; b < 7; b++) {
      textCache.appendBlock(15 - 2 * b); // interleaved, descending: 15, 13, ... and 14, 12, ...
      imageCache.appendBlock(14 - 2 * b);
    }

    // step 1: both prompts, last logits (scalar lm_head rows over 32000 ids are the slow part)
    float[] inputs = new float[48 * hidden];
    System.arraycopy(textPrompt, 0, inputs, 0, textPrompt.length);
    System.arraycopy(imagePrompt, 0, inputs, textPrompt.length, imagePrompt.length);
    Modality[] modalities = new Modality[textRows + NUM_POSITIONS];
    System.arraycopy(text(textRows), 0, modalities, 0, textRows);
    System.arraycopy(imageModalities, 0, modalities, textRows, NUM_POSITIONS);
    DecoderBatch batch = new DecoderBatch(2);
    batch.add(textCache, textRows, LogitRows.LAST);
    batch.add(imageCache, NUM_POSITIONS, LogitRows.LAST);
    float[] logits = new float[2 * vocab];
    batched.forward(batch, inputs, 0, modalities, logits, vocab, 0);

    DecoderSlice alone = new DecoderSlice(model, config, Collective.single(), new ScalarKernels(), 48);
    KvCache textAlone = alone.newKvCache(32, KvCacheDtype.F32);
    KvCache imageAlone = alone.newKvCache(32, KvCacheDtype.F32);
    float[] textLogits = new float[vocab];
    alone.forward(textPrompt, 0, text(textRows), textRows, textAlone, LogitRows.LAST, textLogits, vocab, 0);
    float[] imageLogits = new float[vocab];
    alone.forward(imagePrompt, 0, imageModalities, NUM_POSITIONS, imageAlone, LogitRows.LAST, imageLogits, vocab, 0);

    assertThat(Arrays.copyOfRange(logits, 0, vocab)).as("text sequence").containsExactly(textLogits);
    assertThat(Arrays.copyOfRange(logits, vocab, 2 * vocab)).as("image sequence").containsExactly(imageLogits);
    float[] official = reference.tensor("logits").toFloatArray(); // [1, 24, vocab]
    double maxError = 0;
    for (int i = 0; i < vocab; i++) {
      maxError = Math.max(maxError, Math.abs(logits[vocab + i] - official[(NUM_POSITIONS - 1) * vocab + i]));
    }
    assertThat(maxError).as("image prompt vs the official logits").isLessThan(LOGITS_TOLERANCE);

    // step 2: one decode row each, a text row and an image row, batched vs alone
    float[] rowInputs = new float[2 * hidden];
    batched.embed(1, rowInputs, 0);
    System.arraycopy(imagePrompt, 6 * hidden, rowInputs, hidden, hidden);
    batch.clear();
    batch.add(textCache, 1, LogitRows.LAST);
    batch.add(imageCache, 1, LogitRows.LAST);
    batched.forward(batch, rowInputs, 0, new Modality[] {Modality.TEXT, Modality.VISUAL}, logits, vocab, 0);
    alone.forward(rowInputs, 0, text(1), 1, textAlone, LogitRows.LAST, textLogits, vocab, 0);
    alone.forward(rowInputs, hidden, new Modality[] {Modality.VISUAL}, 1, imageAlone, LogitRows.LAST, imageLogits,
        vocab, 0);
    assertThat(Arrays.copyOfRange(logits, 0, vocab)).as("text decode row").containsExactly(textLogits);
    assertThat(Arrays.copyOfRange(logits, vocab, 2 * vocab)).as("image decode row").containsExactly(imageLogits);
    assertThat(textCache.length()).isEqualTo(textRows + 1);
    assertThat(imageCache.length()).isEqualTo(NUM_POSITIONS + 1);
  }
}
