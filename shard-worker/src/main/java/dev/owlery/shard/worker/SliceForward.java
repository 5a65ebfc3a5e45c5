package dev.owlery.shard.worker;

import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import java.util.List;

/**
 * What the step thread runs a loaded slice's steps on: the engine's {@code DecoderSlice} on the CPU
 * ({@link CpuSliceForward}) or a {@code DeviceDecoderSlice} on a CUDA device ({@link
 * DeviceSliceForward}). Both hold the same rank's slice and give the same logits (bit for bit
 * against the CPU's F16 cache on the device's CPU twin); the shard's block accounting ({@link
 * HeldSequences}, {@link StepPlan}) is the same for both. Used by one thread at a time.
 *
 * @param <S> the backend's record of a sequence's blocks and cached positions
 */
interface SliceForward<S extends SequenceBlocks> extends AutoCloseable {

  /** One sequence's rows in a step, in batch order. */
  record Rows<S>(S sequence, int numRows, LogitRows logitRows) {}

  /** An empty sequence (no blocks, nothing cached) in this slice's KV pool. */
  S newSequence();

  /** KV blocks of the pool. */
  int numKvBlocks();

  /** Bytes the KV pool holds. */
  long kvCacheBytes();

  /** First vocabulary id of this rank's logits. */
  int vocabStart();

  /** Vocabulary ids this rank writes logits for. */
  int localVocabSize();

  /** Writes the embedding of {@code tokenId} into {@code out[outOffset, outOffset + hiddenSize)}. */
  void embed(int tokenId, float[] out, int outOffset);

  /**
   * Runs the rows of {@code batch} (their inputs consecutive rows of {@code inputs} from row 0, one
   * modality each) through the slice, caching their keys and values at their sequences' blocks
   * (each sequence's length grows by its rows), and writes the wanted rows' logits into {@code
   * logits}: row i at {@code i * localVocabSize()}. The all-reduces go through the slice's collective.
   */
  void forward(List<Rows<S>> batch, float[] inputs, Modality[] modalities, float[] logits);

  /** Wall time of the last forward's lm_head, when the backend can tell it apart; else 0. */
  long lastLmHeadNanos();

  /** Frees what the slice holds outside the heap (a device's buffers). */
  @Override
  void close();
}
