package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * One abstractor layer on a device (the engine's {@code VisualAbstractorLayer}, spec §3): the
 * learnable queries cross-attend over {@code [normed queries; normed image]} with sin-cos positions on
 * queries and keys, a residual from the normalised queries, then a pre-norm SwiGLU MLP with an inner
 * LayerNorm; a batch of images, their rows one image after another.
 */
final class DeviceVisualAbstractorLayer {

  /** norm1, normk and norm2 take PyTorch's default eps whatever the config says (spec §8). */
  private static final float TORCH_DEFAULT_LAYER_NORM_EPS = 1e-5f;

  private final Device device;
  private final int hiddenSize;
  private final int numHeads;
  private final int headDim;
  private final int intermediateSize;
  private final float scale;
  private final VisionAttention attention;
  private final DeviceLayerNorm norm1;
  private final DeviceLayerNorm normk;
  private final DeviceLinear query;
  private final DeviceLinear key;
  private final DeviceLinear value;
  private final DevicePointer positions; // float32 [numQueries + numImageTokens, d]: [P_q; P_k]
  private final DeviceLinear outProj;
  private final DeviceLayerNorm norm2;
  private final DeviceLinear w1;
  private final DeviceLinear w3;
  private final DeviceLayerNorm ffnLn;
  private final DeviceLinear w2;

  /**
   * Loads layer {@code prefix} (e.g. {@code model.visual_abstractor.encoder.layers.0}); {@code positions}
   * holds {@code [P_q; P_k]} as the caller chose them (stored, or computed).
   */
  DeviceVisualAbstractorLayer(Device device, AbstractorConfig config, Checkpoint checkpoint, String prefix,
      DevicePointer positions) {
    this.device = device;
    this.hiddenSize = config.hiddenSize();
    this.numHeads = config.numHeads();
    this.headDim = config.headDim();
    this.intermediateSize = config.intermediateSize();
    this.scale = (float) (1 / Math.sqrt(headDim)); // as VisualAbstractorLayer's AttentionShape
    this.positions = positions;
    String cross = prefix + ".crossattention";
    int d = hiddenSize;
    float eps = TORCH_DEFAULT_LAYER_NORM_EPS;
    this.norm1 = DeviceLayerNorm.load(device, checkpoint, cross + ".norm1", d, eps);
    this.normk = DeviceLayerNorm.load(device, checkpoint, cross + ".normk", d, eps);
    this.query = DeviceLinear.load(device, checkpoint, cross + ".attention.query", d, d);
    this.key = DeviceLinear.load(device, checkpoint, cross + ".attention.key", d, d);
    this.value = DeviceLinear.load(device, checkpoint, cross + ".attention.value", d, d);
    this.outProj = DeviceLinear.load(device, checkpoint, cross + ".output.out_proj", d, d);
    this.norm2 = DeviceLayerNorm.load(device, checkpoint, cross + ".output.norm2", d, eps);
    String mlp = cross + ".output.mlp";
    this.w1 = DeviceLinear.load(device, checkpoint, mlp + ".w1", intermediateSize, d);
    this.w3 = DeviceLinear.load(device, checkpoint, mlp + ".w3", intermediateSize, d);
    this.ffnLn = DeviceLayerNorm.load(device, checkpoint, mlp + ".ffn_ln", intermediateSize, config.layerNormEps());
    this.w2 = DeviceLinear.load(device, checkpoint, mlp + ".w2", d, intermediateSize);
    this.attention = VisionAttention.of(key.weight().dtype(), headDim);
  }

  /**
   * Updates {@code a.queries} ({@code numQueries} rows per image) in place, attending over
   * {@code a.imageFeatures} ({@code numImageTokens} rows per image, the same for every layer).
   */
  void forward(DeviceVisionActivations a, int numImages, int numQueries, int numImageTokens) {
    int d = hiddenSize;
    int numKeys = numQueries + numImageTokens;
    // KV = [Qn; Xn] with Qn = norm1(Q), Xn = normk(X): queries first (spec §11 pitfall 3)
    for (int img = 0; img < numImages; img++) {
      DevicePointer kv = a.keyValues.plusWords((long) img * numKeys * d);
      norm1.forward(device, a.queries.plusWords((long) img * numQueries * d), kv, numQueries);
      normk.forward(device, a.imageFeatures.plusWords((long) img * numImageTokens * d),
          kv.plusWords((long) numQueries * d), numImageTokens);
    }
    // KV + P_kv with P_kv = [P_q; P_k]; its first numQueries rows per image are Qn + P_q, the query input
    int n = numImages * numKeys * d;
    device.launch(PtxKernels.ADD_TABLE, DeviceDecoderLayer.strideGrid(PtxKernels.ADD_TABLE, n), 1, a.positioned,
        a.keyValues, positions, n, numKeys * d);
    for (int img = 0; img < numImages; img++) {
      query.forward(device, a.positioned.plusWords((long) img * numKeys * d),
          a.q.plusWords((long) img * numQueries * d), numQueries);
    }
    key.forward(device, a.positioned, a.k, numImages * numKeys);
    value.forward(device, a.keyValues, a.v, numImages * numKeys); // no positions on values
    attention.launch(device, a.crossContext, new VisionAttention.Rows(a.q, numQueries * d, d, headDim),
        new VisionAttention.Rows(a.k, numKeys * d, d, headDim), a.v, numImages, numQueries, numKeys, numHeads,
        headDim, scale);
    // H = Qn + out_proj(ctx): the residual is the NORMALISED queries (spec §11 pitfall 4)
    int queryRows = numImages * numQueries;
    outProj.forward(device, a.crossContext, a.crossProjected, queryRows);
    // per image H = out_proj(ctx) + Qn (the first numQueries rows of its keyValues): an addition, so in
    // either order the same bits; as a launch, not a copy and an add, so that a pass can be captured
    for (int img = 0; img < numImages; img++) {
      int rows = numQueries * d;
      device.launch(PtxKernels.ADD_TABLE, DeviceDecoderLayer.strideGrid(PtxKernels.ADD_TABLE, rows), 1,
          a.queries.plusWords((long) img * rows), a.crossProjected.plusWords((long) img * rows),
          a.keyValues.plusWords((long) img * numKeys * d), rows, rows);
    }
    // Q = H + w2(ffn_ln(silu(w1 n) ⊙ w3 n)) with n = norm2(H)
    norm2.forward(device, a.queries, a.crossNormed, queryRows);
    w1.forward(device, a.crossNormed, a.gate, queryRows);
    w3.forward(device, a.crossNormed, a.up, queryRows);
    int inter = queryRows * intermediateSize;
    device.launch(PtxKernels.SILU_MUL, DeviceDecoderLayer.strideGrid(PtxKernels.SILU_MUL, inter), 1, a.gate, a.gate,
        a.up, inter);
    ffnLn.forward(device, a.gate, a.up, queryRows);
    w2.forward(device, a.up, a.crossProjected, queryRows);
    residualAdd(a.queries, a.crossProjected, queryRows * d);
  }

  private void residualAdd(DevicePointer y, DevicePointer x, int n) {
    device.launch(PtxKernels.RESIDUAL_ADD, DeviceDecoderLayer.strideGrid(PtxKernels.RESIDUAL_ADD, n), 1, y, x, n);
  }
}
