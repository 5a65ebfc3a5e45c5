package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * The vocabulary projection split by vocabulary rows: each rank computes the logits of the real ids
 * of its {@link VocabSlice} ({@code ceil(V/N)} ids, fewer on the last rank, which is given the
 * padding), and the caller gathers the slices by their ids. Uses {@code lm_head.weight};
 * when the checkpoint has none and {@code tie_word_embeddings} is set, {@code model.embed_tokens.weight}.
 */
public final class ParallelLmHead {

  static final String LM_HEAD = "lm_head.weight";

  private final BlockedWeight weight;
  private final int vocabStart;

  private ParallelLmHead(BlockedWeight weight, int vocabStart) {
    this.weight = weight;
    this.vocabStart = vocabStart;
  }

  /** Loads this rank's vocabulary rows of lm_head (or of the tied embeddings). */
  public static ParallelLmHead load(Checkpoint checkpoint, LlamaConfig config, TensorParallelRank tp) {
    String name = !checkpoint.contains(LM_HEAD) && config.tieWordEmbeddings() ? Embedding.EMBED_TOKENS : LM_HEAD;
    Matrix full = checkpoint.tensor(name, config.vocabSize(), config.hiddenSize()).asMatrix();
    VocabSlice slice = tp.vocab(config.vocabSize());
    return new ParallelLmHead(BlockedWeight.load(checkpoint, full.rowSlice(slice.start(), slice.end())), slice.start());
  }

  /** Number of vocabulary ids this rank produces logits for (its padding rows not counted). */
  public int localVocabSize() {
    return weight.rows();
  }

  /** First vocabulary id of this rank's slice. */
  public int vocabStart() {
    return vocabStart;
  }

  /**
   * Logits of this rank's vocabulary slice for {@code numRows} consecutive normalised hidden rows,
   * written as consecutive rows of {@link #localVocabSize()} from {@code logitsOffset}: one pass
   * over the weights for all of them.
   */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] logits, int logitsOffset, int numRows) {
    weight.matmul(kernels, x, xOffset, logits, logitsOffset, numRows);
  }
}
