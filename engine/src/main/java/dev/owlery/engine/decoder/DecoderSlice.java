package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.ContiguousKvCache;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.parallel.Collective;
import java.util.ArrayList;
import java.util.List;

/**
 * Rank r of N of the decoder (DESIGN.md §2, shard worker): its attention heads and kv heads (a
 * replicated kv head when there are fewer kv heads than ranks), its rows of gate/up and columns of
 * down/o, replicated norms and embeddings, and its vocabulary slice of lm_head. {@code forward} runs the rows of one sequence, or of a batch of sequences, through
 * every layer (two all-reduces per layer through the {@link Collective}, whatever the number of
 * sequences) and writes this rank's logit columns.
 * One thread uses a slice at a time.
 */
public final class DecoderSlice {

  private final LlamaConfig config;
  private final TensorParallelRank tp;
  private final Kernels kernels;
  private final Embedding embedTokens;
  private final List<LlamaDecoderLayer> layers;
  private final RmsNorm norm;
  private final ParallelLmHead lmHead;
  private final StepActivations activations;
  private final RowLayout layout;
  private final int numLocalKvHeads;
  private long lastLmHeadNanos;

  /**
   * Loads this rank's slice; {@code stepCapacity} tokens are processed per pass (longer inputs run
   * in chunks of that size).
   */
  public DecoderSlice(Checkpoint checkpoint, LlamaConfig config, Collective collective, Kernels kernels,
      int stepCapacity) {
    if (stepCapacity < 1) {
      throw new IllegalArgumentException("stepCapacity must be >= 1, got " + stepCapacity);
    }
    this.config = config;
    this.tp = new TensorParallelRank(collective.rank(), collective.size());
    this.kernels = kernels;
    // every split checked before mapping a weight
    int numLocalHeads = tp.heads(config.numHeads()).size();
    this.numLocalKvHeads = tp.kvHeads(config.numHeads(), config.numKvHeads()).size();
    int localIntermediate = tp.evenShare("intermediate_size", config.intermediateSize()).size();
    tp.vocab(config.vocabSize());
    this.embedTokens = Embedding.load(checkpoint, config);
    RotaryEmbedding rotaryEmb = new RotaryEmbedding(config.headDim(), config.ropeTheta(), config.maxPositions());
    List<LlamaDecoderLayer> loaded = new ArrayList<>(config.numLayers());
    for (int i = 0; i < config.numLayers(); i++) {
      loaded.add(new LlamaDecoderLayer(checkpoint, i, config, tp, collective, rotaryEmb, kernels));
    }
    this.layers = List.copyOf(loaded);
    this.norm = RmsNorm.load(checkpoint, "model.norm.weight", config.hiddenSize(), config.rmsNormEps());
    this.lmHead = ParallelLmHead.load(checkpoint, config, tp);
    this.activations = new StepActivations(stepCapacity, config.hiddenSize(), numLocalHeads * config.headDim(),
        numLocalKvHeads * config.headDim(), localIntermediate);
    this.layout = new RowLayout(stepCapacity);
  }

  public TensorParallelRank rank() {
    return tp;
  }

  public LlamaConfig config() {
    return config;
  }

  /** First vocabulary id of this rank's logits. */
  public int vocabStart() {
    return lmHead.vocabStart();
  }

  /** Vocabulary ids this rank writes logits for: its {@link VocabSlice}'s real ids, padding excluded. */
  public int localVocabSize() {
    return lmHead.localVocabSize();
  }

  /** Time the last {@link #forward} spent in the final norm and the lm_head slice, for step timings. */
  public long lastLmHeadNanos() {
    return lastLmHeadNanos;
  }

  /** Rows one pass through the layers holds: the most a batched {@link #forward(DecoderBatch, float[], int, Modality[], float[], int, int)} takes. */
  public int stepCapacity() {
    return layout.capacity();
  }

  /**
   * A paged KV cache pool for this rank's kv heads, every layer: {@code numBlocks} blocks of
   * {@code blockSize} positions, stored as {@code dtype}.
   */
  public KvBlockPool newKvBlockPool(int numBlocks, int blockSize, KvCacheDtype dtype) {
    return new KvBlockPool(config.numLayers(), numLocalKvHeads, config.headDim(), numBlocks, blockSize, dtype);
  }

  /** A KV cache for this rank's kv heads holding up to {@code capacity} positions, stored as {@code dtype}. */
  public KvCache newKvCache(int capacity, KvCacheDtype dtype) {
    if (capacity > config.maxPositions()) {
      throw new IllegalArgumentException("KV cache capacity %d exceeds max_position_embeddings %d"
          .formatted(capacity, config.maxPositions()));
    }
    return new ContiguousKvCache(config.numLayers(), numLocalKvHeads, config.headDim(), capacity, dtype);
  }

  /** Writes the embedding of {@code tokenId} into {@code out[outOffset, outOffset + hiddenSize)}. */
  public void embed(int tokenId, float[] out, int outOffset) {
    embedTokens.lookup(tokenId, out, outOffset);
  }

  /**
   * Runs {@code numTokens} rows of {@code inputsEmbeds} (from {@code inputsOffset}, each
   * {@code hiddenSize} wide, with {@code modalities[0, numTokens)}) at positions
   * {@code cache.length()} onwards, in passes of at most the step capacity, commits them to the
   * cache, and writes this rank's logits of the requested rows: row i of the output starts at
   * {@code logits[i * logitsRowStride + logitsColumn]} and holds {@link #localVocabSize()} values.
   */
  public void forward(float[] inputsEmbeds, int inputsOffset, Modality[] modalities, int numTokens, KvCache cache,
      LogitRows rows, float[] logits, int logitsRowStride, int logitsColumn) {
    if (numTokens < 1 || cache.length() + numTokens > cache.capacity()) {
      throw new IllegalArgumentException("cannot run %d tokens after %d cached positions: capacity is %d"
          .formatted(numTokens, cache.length(), cache.capacity()));
    }
    lastLmHeadNanos = 0;
    for (int done = 0; done < numTokens; ) {
      int n = Math.min(layout.capacity(), numTokens - done);
      layout.clear();
      int first = layout.addSequence(cache, modalities, done, n);
      switch (rows) {
        case ALL -> {
          for (int k = 0; k < n; k++) {
            layout.wantLogits(first + k, done + k);
          }
        }
        case LAST -> {
          if (done + n == numTokens) {
            layout.wantLogits(first + n - 1, 0);
          }
        }
      }
      pass(inputsEmbeds, inputsOffset + done * config.hiddenSize(), logits, logitsRowStride, logitsColumn);
      done += n;
    }
  }

  /**
   * Runs every sequence of {@code batch} in one pass through the layers (one pair of all-reduces
   * per layer for the whole batch): its rows are consecutive rows of {@code inputsEmbeds} from
   * {@code inputsOffset} with {@code modalities} from 0, in batch order. Commits each sequence's
   * rows to its cache and writes the logits of the requested rows, per sequence in batch order, as
   * {@link #forward(float[], int, Modality[], int, KvCache, LogitRows, float[], int, int)} does.
   *
   * @throws IllegalArgumentException when the batch has more rows than the step capacity or a
   *     sequence's rows do not fit its cache; nothing has run then
   */
  public void forward(DecoderBatch batch, float[] inputsEmbeds, int inputsOffset, Modality[] modalities,
      float[] logits, int logitsRowStride, int logitsColumn) {
    if (batch.numTokens() < 1 || batch.numTokens() > layout.capacity()) {
      throw new IllegalArgumentException("a batch must have between 1 and the slice's step capacity (%d) rows. Given: %d"
          .formatted(layout.capacity(), batch.numTokens()));
    }
    lastLmHeadNanos = 0;
    layout.clear();
    int row = 0;
    int logitRow = 0;
    for (int i = 0; i < batch.numSequences(); i++) {
      int n = batch.numRows(i);
      int first = layout.addSequence(batch.cache(i), modalities, row, n);
      switch (batch.logitRows(i)) {
        case ALL -> {
          for (int k = 0; k < n; k++) {
            layout.wantLogits(first + k, logitRow++);
          }
        }
        case LAST -> layout.wantLogits(first + n - 1, logitRow++);
      }
      row += n;
    }
    pass(inputsEmbeds, inputsOffset, logits, logitsRowStride, logitsColumn);
  }

  /** One pass of the rows {@link #layout} holds through every layer, the final norm and lm_head. */
  private void pass(float[] inputsEmbeds, int inputsOffset, float[] logits, int logitsRowStride, int logitsColumn) {
    int hidden = config.hiddenSize();
    int n = layout.numTokens();
    StepActivations a = activations;
    System.arraycopy(inputsEmbeds, inputsOffset, a.residual, 0, n * hidden);
    for (LlamaDecoderLayer layer : layers) {
      layer.forward(a, layout);
    }
    layout.advanceCaches();
    // final norm and lm_head, only on the rows whose logits are wanted: their normalised rows are
    // gathered to the front of `normed`, and when they land in consecutive rows of a buffer as wide
    // as this rank's vocabulary slice (a shard's answer, a single rank's logits), lm_head reads its
    // weights once for all of them instead of once per row
    long lmHeadStart = System.nanoTime();
    int numWanted = 0;
    int firstOutRow = 0;
    boolean consecutive = true;
    for (int t = 0; t < n; t++) {
      int outRow = layout.logitRow(t);
      if (outRow != RowLayout.NO_LOGITS) {
        norm.forward(kernels, a.residual, t * hidden, a.normed, numWanted * hidden);
        firstOutRow = numWanted == 0 ? outRow : firstOutRow;
        consecutive &= outRow == firstOutRow + numWanted;
        numWanted++;
      }
    }
    int vocab = lmHead.localVocabSize();
    if (consecutive && logitsRowStride == vocab && logitsColumn == 0) {
      if (numWanted > 0) {
        lmHead.forward(kernels, a.normed, 0, logits, firstOutRow * vocab, numWanted);
      }
    } else {
      for (int t = 0, i = 0; t < n; t++) {
        int outRow = layout.logitRow(t);
        if (outRow != RowLayout.NO_LOGITS) {
          lmHead.forward(kernels, a.normed, i++ * hidden, logits, outRow * logitsRowStride + logitsColumn, 1);
        }
      }
    }
    lastLmHeadNanos += System.nanoTime() - lmHeadStart;
  }
}
