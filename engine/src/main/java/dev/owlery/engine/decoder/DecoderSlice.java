package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.ContiguousKvCache;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.parallel.Collective;
import java.util.ArrayList;
import java.util.List;

/**
 * Rank r of N of the decoder (DESIGN.md §2, shard worker): its attention heads and kv heads, its
 * columns of gate/up and rows of down/o, replicated norms and embeddings, and its vocabulary slice
 * of lm_head. {@link #forward} runs {@code numTokens} input rows through every layer (two
 * all-reduces per layer through the {@link Collective}) and writes this rank's logit columns.
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
  private final Modality[] stepModalities;
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
    int numLocalHeads = tp.local("num_attention_heads", config.numHeads());
    this.numLocalKvHeads = tp.local("num_key_value_heads", config.numKvHeads());
    int localIntermediate = tp.local("intermediate_size", config.intermediateSize());
    tp.local("vocab_size", config.vocabSize());
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
        numLocalKvHeads * config.headDim(), localIntermediate, config.maxPositions());
    this.stepModalities = new Modality[stepCapacity];
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

  public int localVocabSize() {
    return lmHead.localVocabSize();
  }

  /** Time the last {@link #forward} spent in the final norm and the lm_head slice, for step timings. */
  public long lastLmHeadNanos() {
    return lastLmHeadNanos;
  }

  /** A KV cache for this rank's kv heads holding up to {@code capacity} positions. */
  public KvCache newKvCache(int capacity) {
    if (capacity > config.maxPositions()) {
      throw new IllegalArgumentException("KV cache capacity %d exceeds max_position_embeddings %d"
          .formatted(capacity, config.maxPositions()));
    }
    return new ContiguousKvCache(config.numLayers(), numLocalKvHeads, config.headDim(), capacity);
  }

  /** Writes the embedding of {@code tokenId} into {@code out[outOffset, outOffset + hiddenSize)}. */
  public void embed(int tokenId, float[] out, int outOffset) {
    embedTokens.lookup(tokenId, out, outOffset);
  }

  /**
   * Runs {@code numTokens} rows of {@code inputsEmbeds} (from {@code inputsOffset}, each
   * {@code hiddenSize} wide, with {@code modalities[0, numTokens)}) at positions
   * {@code cache.length()} onwards, commits them to the cache, and writes this rank's logits of the
   * requested rows: row i of the output starts at {@code logits[i * logitsRowStride + logitsColumn]}
   * and holds {@link #localVocabSize()} values.
   */
  public void forward(float[] inputsEmbeds, int inputsOffset, Modality[] modalities, int numTokens, KvCache cache,
      LogitRows rows, float[] logits, int logitsRowStride, int logitsColumn) {
    int hidden = config.hiddenSize();
    if (numTokens < 1 || cache.length() + numTokens > cache.capacity()) {
      throw new IllegalArgumentException("cannot run %d tokens after %d cached positions: capacity is %d"
          .formatted(numTokens, cache.length(), cache.capacity()));
    }
    StepActivations a = activations;
    lastLmHeadNanos = 0;
    for (int done = 0; done < numTokens; ) {
      int n = Math.min(a.capacity, numTokens - done);
      System.arraycopy(inputsEmbeds, inputsOffset + done * hidden, a.residual, 0, n * hidden);
      System.arraycopy(modalities, done, stepModalities, 0, n);
      for (LlamaDecoderLayer layer : layers) {
        layer.forward(a, stepModalities, n, cache);
      }
      cache.advance(n);
      // final norm and lm_head, only on the rows whose logits are wanted
      int firstRow = rows == LogitRows.ALL ? 0 : n - 1;
      boolean wanted = rows == LogitRows.ALL || done + n == numTokens;
      long lmHeadStart = System.nanoTime();
      for (int t = firstRow; wanted && t < n; t++) {
        norm.forward(kernels, a.residual, t * hidden, a.normed, 0);
        int outRow = rows == LogitRows.ALL ? done + t : 0;
        lmHead.forward(kernels, a.normed, 0, logits, outRow * logitsRowStride + logitsColumn);
      }
      lastLmHeadNanos += System.nanoTime() - lmHeadStart;
      done += n;
    }
  }
}
