package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;

/**
 * One abstractor layer ({@code MplugOwlVisualAbstractorLayer}, spec §3): the learnable queries
 * cross-attend over {@code [normed queries; normed image]} with sin-cos positions on queries and
 * keys, a residual from the normalised queries, then a pre-norm SwiGLU MLP with an inner LayerNorm.
 */
final class VisualAbstractorLayer {

  /** norm1, normk and norm2 are built without an eps, so PyTorch's default applies whatever the config says (spec §8). */
  static final float TORCH_DEFAULT_LAYER_NORM_EPS = 1e-5f;

  private final Kernels kernels;
  private final int hiddenSize;
  private final int numHeads;
  private final int headDim;
  private final int intermediateSize;
  /** Heads of the cross-attention; scores divided by sqrt(head_dim) (spec §9), as a multiply by its inverse. */
  private final AttentionShape shape;

  private final LayerNorm norm1;
  private final LayerNorm normk;
  private final Linear query;
  private final Linear key;
  private final Linear value;
  private final Matrix qPosEmbed; // P_q [numQueries, hiddenSize]
  private final Matrix kPosEmbed; // P_k [1 + gridSize², hiddenSize], CLS row first
  private final Linear outProj;
  private final LayerNorm norm2;
  private final Linear w1;
  private final Linear w3;
  private final LayerNorm ffnLn;
  private final Linear w2;

  /**
   * Loads layer {@code prefix} (e.g. {@code model.visual_abstractor.encoder.layers.0}); the
   * position tables are the stored buffers or the computed ones, as the caller decided.
   */
  VisualAbstractorLayer(
      AbstractorConfig config, Checkpoint checkpoint, String prefix, Matrix qPosEmbed, Matrix kPosEmbed, Kernels kernels) {
    this.kernels = kernels;
    this.hiddenSize = config.hiddenSize();
    this.numHeads = config.numHeads();
    this.headDim = config.headDim();
    this.intermediateSize = config.intermediateSize();
    this.shape = new AttentionShape(numHeads, numHeads, headDim, (float) (1 / Math.sqrt(headDim)));
    String cross = prefix + ".crossattention";
    int d = hiddenSize;
    this.norm1 = LayerNorm.load(checkpoint, cross + ".norm1", d, TORCH_DEFAULT_LAYER_NORM_EPS);
    this.normk = LayerNorm.load(checkpoint, cross + ".normk", d, TORCH_DEFAULT_LAYER_NORM_EPS);
    this.query = Linear.load(checkpoint, cross + ".attention.query", d, d);
    this.key = Linear.load(checkpoint, cross + ".attention.key", d, d);
    this.value = Linear.load(checkpoint, cross + ".attention.value", d, d);
    this.qPosEmbed = qPosEmbed;
    this.kPosEmbed = kPosEmbed;
    this.outProj = Linear.load(checkpoint, cross + ".output.out_proj", d, d);
    this.norm2 = LayerNorm.load(checkpoint, cross + ".output.norm2", d, TORCH_DEFAULT_LAYER_NORM_EPS);
    String mlp = cross + ".output.mlp";
    this.w1 = Linear.load(checkpoint, mlp + ".w1", intermediateSize, d);
    this.w3 = Linear.load(checkpoint, mlp + ".w3", intermediateSize, d);
    this.ffnLn = LayerNorm.load(checkpoint, mlp + ".ffn_ln", intermediateSize, config.layerNormEps());
    this.w2 = Linear.load(checkpoint, mlp + ".w2", d, intermediateSize);
  }

  /**
   * Updates {@code queries} ({@code [numQueries, hiddenSize]}) in place, attending over
   * {@code imageFeatures} ({@code [numImageTokens, hiddenSize]}, the same for every layer).
   */
  void forward(float[] queries, float[] imageFeatures, Buffers b) {
    int numQueries = b.numQueries;
    int numKeys = b.numKeys;
    int queriesSize = numQueries * hiddenSize;
    // KV = [Qn; Xn] with Qn = norm1(Q), Xn = normk(X): queries first (spec §11 pitfall 3)
    norm1.forward(kernels, queries, 0, b.keyValues, 0, numQueries);
    normk.forward(kernels, imageFeatures, 0, b.keyValues, queriesSize, numKeys - numQueries);
    // KV + P_kv with P_kv = [P_q; P_k]; its first numQueries rows are Qn + P_q, the query input
    addPositions(b.keyValues, b.positioned, numQueries, numKeys);
    query.forward(kernels, b.positioned, 0, b.q, 0, numQueries);
    key.forward(kernels, b.positioned, 0, b.k, 0, numKeys);
    value.forward(kernels, b.keyValues, 0, b.v, 0, numKeys); // no positions on values
    crossAttention(b);
    // H = Qn + out_proj(ctx): the residual is the NORMALISED queries (spec §11 pitfall 4)
    outProj.forward(kernels, b.context, 0, b.projected, 0, numQueries);
    System.arraycopy(b.keyValues, 0, queries, 0, queriesSize);
    kernels.axpy(1f, b.projected, 0, queries, 0, queriesSize);
    // Q = H + w2(ffn_ln(silu(w1 n) ⊙ w3 n)) with n = norm2(H)
    norm2.forward(kernels, queries, 0, b.normed, 0, numQueries);
    w1.forward(kernels, b.normed, 0, b.gate, 0, numQueries);
    w3.forward(kernels, b.normed, 0, b.up, 0, numQueries);
    kernels.siluMul(b.gate, 0, b.up, 0, b.gate, 0, numQueries * intermediateSize);
    ffnLn.forward(kernels, b.gate, 0, b.up, 0, numQueries);
    w2.forward(kernels, b.up, 0, b.projected, 0, numQueries);
    kernels.axpy(1f, b.projected, 0, queries, 0, queriesSize);
  }

  private void addPositions(float[] keyValues, float[] positioned, int numQueries, int numKeys) {
    for (int t = 0; t < numKeys; t++) {
      boolean isQuery = t < numQueries;
      Matrix table = isQuery ? qPosEmbed : kPosEmbed;
      int tableRow = isQuery ? t : t - numQueries;
      int row = t * hiddenSize;
      for (int i = 0; i < hiddenSize; i++) {
        positioned[row + i] = keyValues[row + i] + table.get(tableRow, i);
      }
    }
  }

  /** Multi-head softmax attention of the queries over all keys; the model's masks are all zero. */
  private void crossAttention(Buffers b) {
    kernels.attention(b.q, 0, b.headKeyValues, shape, AttentionMask.NONE, b.numQueries, b.numKeys, b.context, 0);
  }

  /** Scratch activations for one image, shared by every layer of the abstractor. */
  static final class Buffers {
    final int numQueries;
    /** Keys and values: numQueries + numImageTokens. */
    final int numKeys;
    final float[] keyValues;
    final float[] positioned;
    final float[] q;
    final float[] k;
    final float[] v;
    final float[] context;
    final float[] projected;
    final float[] normed;
    final float[] gate;
    final float[] up;
    final ActivationKeyValues headKeyValues;

    Buffers(AbstractorConfig config, int numImageTokens) {
      int d = config.hiddenSize();
      this.numQueries = config.numQueries();
      this.numKeys = numQueries + numImageTokens;
      this.keyValues = new float[numKeys * d];
      this.positioned = new float[numKeys * d];
      this.q = new float[numQueries * d];
      this.k = new float[numKeys * d];
      this.v = new float[numKeys * d];
      this.context = new float[numQueries * d];
      this.projected = new float[numQueries * d];
      this.normed = new float[numQueries * d];
      this.gate = new float[numQueries * config.intermediateSize()];
      this.up = new float[numQueries * config.intermediateSize()];
      this.headKeyValues = new ActivationKeyValues(k, v, d, config.headDim(), 0, 0, config.headDim());
    }
  }
}
