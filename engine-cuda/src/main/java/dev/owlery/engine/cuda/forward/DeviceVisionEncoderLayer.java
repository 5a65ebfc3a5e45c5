package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * One pre-norm ViT layer on a device (the engine's {@code VisionEncoderLayer}, spec §2): fused-QKV
 * self-attention without mask over each image's tokens, then a QuickGELU MLP, each behind a
 * LayerNorm and a residual add; a batch of images as one block of rows.
 */
final class DeviceVisionEncoderLayer {

  private final Device device;
  private final int hiddenSize;
  private final int numHeads;
  private final int headDim;
  private final int intermediateSize;
  private final float scale;
  private final VisionAttention attention;
  private final DeviceLayerNorm inputLayernorm;
  private final DeviceLinear queryKeyValue;
  private final DeviceLinear dense;
  private final DeviceLayerNorm postAttentionLayernorm;
  private final DeviceLinear fc1;
  private final DeviceLinear fc2;

  /** Loads layer {@code prefix} (e.g. {@code model.vision_model.encoder.layers.3}), checking every shape. */
  DeviceVisionEncoderLayer(Device device, VisionConfig config, Checkpoint checkpoint, String prefix) {
    this.device = device;
    this.hiddenSize = config.hiddenSize();
    this.numHeads = config.numHeads();
    this.headDim = config.headDim();
    this.intermediateSize = config.intermediateSize();
    this.scale = (float) Math.pow(headDim, -0.5); // as VisionEncoderLayer's AttentionShape
    float eps = config.layerNormEps();
    this.inputLayernorm = DeviceLayerNorm.load(device, checkpoint, prefix + ".input_layernorm", hiddenSize, eps);
    this.queryKeyValue = DeviceLinear.load(device, checkpoint, prefix + ".self_attn.query_key_value", 3 * hiddenSize,
        hiddenSize);
    this.dense = DeviceLinear.load(device, checkpoint, prefix + ".self_attn.dense", hiddenSize, hiddenSize);
    this.postAttentionLayernorm = DeviceLayerNorm.load(device, checkpoint, prefix + ".post_attention_layernorm",
        hiddenSize, eps);
    this.fc1 = DeviceLinear.load(device, checkpoint, prefix + ".mlp.fc1", intermediateSize, hiddenSize);
    this.fc2 = DeviceLinear.load(device, checkpoint, prefix + ".mlp.fc2", hiddenSize, intermediateSize);
    this.attention = VisionAttention.of(queryKeyValue.weight().dtype(), headDim);
  }

  /** Transforms {@code a.hidden} in place for {@code numImages} images of {@code numTokens} rows each. */
  void forward(DeviceVisionActivations a, int numImages, int numTokens) {
    int n = numImages * numTokens;
    // h = x + dense(SelfAttn(LN_in(x)))
    inputLayernorm.forward(device, a.hidden, a.normed, n);
    queryKeyValue.forward(device, a.normed, a.qkv, n);
    selfAttention(a, numImages, numTokens);
    dense.forward(device, a.context, a.projected, n);
    residualAdd(a.hidden, a.projected, n * hiddenSize);
    // x' = h + fc2(QuickGELU(fc1(LN_post(h))))
    postAttentionLayernorm.forward(device, a.hidden, a.normed, n);
    fc1.forward(device, a.normed, a.intermediate, n);
    device.launch(PtxKernels.QUICK_GELU, DeviceDecoderLayer.strideGrid(PtxKernels.QUICK_GELU,
        (long) n * intermediateSize), 1, a.intermediate, n * intermediateSize);
    fc2.forward(device, a.intermediate, a.projected, n);
    residualAdd(a.hidden, a.projected, n * hiddenSize);
  }

  /**
   * Each image's tokens attend to all its tokens. The fused projection is interleaved per head (spec
   * §11 pitfall 1): row feature {@code h·3·headDim + t·headDim + d}, t = 0 q, 1 k, 2 v, read in place.
   */
  private void selfAttention(DeviceVisionActivations a, int numImages, int numTokens) {
    int row = 3 * hiddenSize; // qkv is [numTokens, numHeads * 3 * headDim] per image
    int image = numTokens * row;
    int head = 3 * headDim;
    attention.launch(device, a.context, new VisionAttention.Rows(a.qkv, image, row, head),
        new VisionAttention.Rows(a.qkv.plusWords(headDim), image, row, head), a.qkv.plusWords(2L * headDim),
        numImages, numTokens, numTokens, numHeads, headDim, scale);
  }

  private void residualAdd(DevicePointer y, DevicePointer x, int n) {
    device.launch(PtxKernels.RESIDUAL_ADD, DeviceDecoderLayer.strideGrid(PtxKernels.RESIDUAL_ADD, n), 1, y, x, n);
  }
}
