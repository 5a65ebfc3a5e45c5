package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.parallel.Collective;

/**
 * Causal self-attention with RoPE and grouped-query heads (spec §4) for one rank's heads: q_proj
 * shared, k_proj and v_proj per modality ({@link Multiway}), o_proj row-parallel (one all-reduce).
 * With fewer kv heads than ranks, this rank holds (and caches) a copy of the one kv head its query
 * heads share.
 */
public final class LlamaAttention {

  private final Kernels kernels;
  private final ColumnParallelLinear qProj;
  private final Multiway<ColumnParallelLinear> kProj;
  private final Multiway<ColumnParallelLinear> vProj;
  private final RowParallelLinear oProj;
  private final RotaryEmbedding rotaryEmb;
  private final int layerIndex;
  private final int numLocalHeads;
  private final int numLocalKvHeads;
  private final int headDim;
  private final AttentionShape shape;

  /** Loads {@code <prefix>.{q,k,v,o}_proj} for this rank; {@code prefix} is {@code model.layers.i.self_attn}. */
  public LlamaAttention(Checkpoint checkpoint, String prefix, int layerIndex, LlamaConfig config,
      TensorParallelRank tp, Collective collective, RotaryEmbedding rotaryEmb, Kernels kernels) {
    this.kernels = kernels;
    this.layerIndex = layerIndex;
    this.headDim = config.headDim();
    IndexRange heads = tp.heads(config.numHeads());
    IndexRange kvHeads = tp.kvHeads(config.numHeads(), config.numKvHeads());
    this.numLocalHeads = heads.size();
    this.numLocalKvHeads = kvHeads.size();
    int hidden = config.hiddenSize();
    IndexRange qFeatures = heads.times(headDim);
    IndexRange kvFeatures = kvHeads.times(headDim);
    this.qProj = ColumnParallelLinear.load(checkpoint, prefix + ".q_proj.weight", config.qSize(), hidden, qFeatures);
    this.kProj = Multiway.load(prefix + ".k_proj", config.numModalities(),
        name -> ColumnParallelLinear.load(checkpoint, name, config.kvSize(), hidden, kvFeatures));
    this.vProj = Multiway.load(prefix + ".v_proj", config.numModalities(),
        name -> ColumnParallelLinear.load(checkpoint, name, config.kvSize(), hidden, kvFeatures));
    this.oProj = RowParallelLinear.load(checkpoint, prefix + ".o_proj.weight", hidden, config.qSize(), qFeatures,
        collective);
    this.rotaryEmb = rotaryEmb;
    this.shape = new AttentionShape(numLocalHeads, numLocalKvHeads, headDim, (float) (1 / Math.sqrt(headDim)));
  }

  /**
   * Attention over {@code a.normed} for the rows of {@code layout}, each at its own sequence's next
   * position: writes this layer's keys/values into each row's cache, attends each row over its own
   * sequence's positions {@code [0, position]}, and leaves the all-reduced o_proj output in
   * {@code a.projected}.
   */
  void forward(StepActivations a, RowLayout layout) {
    int numTokens = layout.numTokens();
    Modality[] modalities = layout.modalities;
    int qWidth = numLocalHeads * headDim;
    int kvWidth = numLocalKvHeads * headDim;
    // q = Wq a; k = Wk_{m} a; v = Wv_{m} a   [numTokens, numLocal(Kv)Heads * headDim]
    qProj.forward(kernels, a.normed, 0, a.query, 0, numTokens);
    for (int t = 0; t < numTokens; ) {
      int end = kProj.runEnd(modalities, t, numTokens);
      kProj.get(modalities[t]).forward(kernels, a.normed, t * qProj.inFeatures(), a.key, t * kvWidth, end - t);
      vProj.get(modalities[t]).forward(kernels, a.normed, t * qProj.inFeatures(), a.value, t * kvWidth, end - t);
      t = end;
    }
    // RoPE on q and k, then append k (post-RoPE) and v to the row's cache
    kernels.forEachRow(numTokens, t -> {
      KvCache cache = layout.cache(t);
      int position = layout.position(t);
      rotaryEmb.apply(a.query, t * qWidth, numLocalHeads, position);
      rotaryEmb.apply(a.key, t * kvWidth, numLocalKvHeads, position);
      for (int h = 0; h < numLocalKvHeads; h++) {
        int from = t * kvWidth + h * headDim;
        cache.write(layerIndex, position, h, a.key, from, a.value, from);
      }
    });
    // Attn_causal(q, k, v) = softmax(q k^T / sqrt(headDim)) v, each sequence's rows over its own
    // positions [0, position]; then o_proj (all-reduce #1 of the layer)
    for (int s = 0; s < layout.numSequences(); s++) {
      int first = layout.firstRow(s);
      int numRows = layout.numRows(s);
      int numKeys = layout.position(first + numRows - 1) + 1;
      kernels.attention(a.query, first * qWidth, layout.cache(first).layer(layerIndex), shape, AttentionMask.CAUSAL,
          numRows, numKeys, a.attnOutput, first * qWidth);
    }
    oProj.forward(kernels, a.attnOutput, 0, a.projected, 0, numTokens);
  }
}
