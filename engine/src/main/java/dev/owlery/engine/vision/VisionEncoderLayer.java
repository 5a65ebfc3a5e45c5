package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;

/**
 * One pre-norm ViT layer ({@code MplugOwlVisionEncoderLayer}, spec §2): fused-QKV self-attention
 * without mask, then a QuickGELU MLP, each behind a LayerNorm and a residual add.
 */
final class VisionEncoderLayer {

  /** QuickGELU's slope: {@code x · sigmoid(1.702 x)}. */

  private final Kernels kernels;
  private final int hiddenSize;
  private final int numHeads;
  private final int headDim;
  private final int intermediateSize;
  /** Heads of the fused projection; scores scaled by head_dim^-0.5 (spec §9). */
  private final AttentionShape shape;

  private final LayerNorm inputLayernorm;
  private final Linear queryKeyValue;
  private final Linear dense;
  private final LayerNorm postAttentionLayernorm;
  private final Linear fc1;
  private final Linear fc2;

  /** Loads layer {@code prefix} (e.g. {@code model.vision_model.encoder.layers.3}), checking every shape. */
  VisionEncoderLayer(VisionConfig config, Checkpoint checkpoint, String prefix, Kernels kernels) {
    this.kernels = kernels;
    this.hiddenSize = config.hiddenSize();
    this.numHeads = config.numHeads();
    this.headDim = config.headDim();
    this.intermediateSize = config.intermediateSize();
    this.shape = new AttentionShape(numHeads, numHeads, headDim, (float) Math.pow(headDim, -0.5));
    float eps = config.layerNormEps();
    this.inputLayernorm = LayerNorm.load(checkpoint, prefix + ".input_layernorm", hiddenSize, eps);
    this.queryKeyValue = Linear.load(checkpoint, prefix + ".self_attn.query_key_value", 3 * hiddenSize, hiddenSize);
    this.dense = Linear.load(checkpoint, prefix + ".self_attn.dense", hiddenSize, hiddenSize);
    this.postAttentionLayernorm = LayerNorm.load(checkpoint, prefix + ".post_attention_layernorm", hiddenSize, eps);
    this.fc1 = Linear.load(checkpoint, prefix + ".mlp.fc1", intermediateSize, hiddenSize);
    this.fc2 = Linear.load(checkpoint, prefix + ".mlp.fc2", hiddenSize, intermediateSize);
  }

  /** Runs the layer in place on {@code hidden} ({@code [numTokens, hiddenSize]}). */
  void forward(float[] hidden, Buffers buffers) {
    int numTokens = buffers.numTokens;
    // h = x + dense(SelfAttn(LN_in(x)))
    inputLayernorm.forward(kernels, hidden, 0, buffers.normed, 0, numTokens);
    queryKeyValue.forward(kernels, buffers.normed, 0, buffers.qkv, 0, numTokens);
    selfAttention(buffers);
    dense.forward(kernels, buffers.context, 0, buffers.projected, 0, numTokens);
    kernels.axpy(1f, buffers.projected, 0, hidden, 0, numTokens * hiddenSize);
    // x' = h + fc2(QuickGELU(fc1(LN_post(h))))
    postAttentionLayernorm.forward(kernels, hidden, 0, buffers.normed, 0, numTokens);
    fc1.forward(kernels, buffers.normed, 0, buffers.intermediate, 0, numTokens);
    kernels.quickGelu(buffers.intermediate, 0, numTokens * intermediateSize);
    fc2.forward(kernels, buffers.intermediate, 0, buffers.projected, 0, numTokens);
    kernels.axpy(1f, buffers.projected, 0, hidden, 0, numTokens * hiddenSize);
  }

  /**
   * Softmax attention over all tokens (no mask). The fused projection is interleaved per head
   * (spec §11 pitfall 1): row feature {@code h·3·headDim + t·headDim + d}, t = 0 q, 1 k, 2 v.
   */
  private void selfAttention(Buffers buffers) {
    int numTokens = buffers.numTokens;
    int rowStride = 3 * hiddenSize; // qkv is [numTokens, numHeads * 3 * headDim]
    for (int i = 0; i < numTokens; i++) {
      for (int h = 0; h < numHeads; h++) {
        System.arraycopy(buffers.qkv, i * rowStride + h * 3 * headDim, buffers.query, i * hiddenSize + h * headDim, headDim);
      }
    }
    // context heads concatenated as h·headDim + d
    kernels.attention(buffers.query, 0, buffers.keyValues, shape, AttentionMask.NONE, numTokens, numTokens,
        buffers.context, 0);
  }

  /** Scratch activations for one image, shared by every layer of the encoder. */
  static final class Buffers {
    final int numTokens;
    final float[] normed;
    final float[] qkv;
    final float[] context;
    final float[] projected;
    final float[] intermediate;
    /** The queries gathered from qkv, [numTokens, numHeads * headDim]. */
    final float[] query;
    final ActivationKeyValues keyValues;

    Buffers(VisionConfig config) {
      this.numTokens = config.numTokens();
      this.normed = new float[numTokens * config.hiddenSize()];
      this.qkv = new float[numTokens * 3 * config.hiddenSize()];
      this.context = new float[numTokens * config.hiddenSize()];
      this.projected = new float[numTokens * config.hiddenSize()];
      this.intermediate = new float[numTokens * config.intermediateSize()];
      this.query = new float[numTokens * config.hiddenSize()];
      int headDim = config.headDim();
      this.keyValues = new ActivationKeyValues(qkv, qkv, 3 * config.hiddenSize(), 3 * headDim, headDim, 2 * headDim,
          headDim);
    }
  }
}
