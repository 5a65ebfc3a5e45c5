package dev.owlery.engine.cuda.plan;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.VisionEncoder;
import dev.owlery.engine.vision.VisualAbstractor;

/**
 * The device memory of the vision tower and abstractor ({@code DeviceVisionTower}): its weights,
 * uploaded once, and the float32 activations of one image of a pass, allocated for the pass's
 * most images.
 *
 * @param weightBytes the linear layers' weight matrices in the device dtype of {@code --weights},
 *     the patch embedding in its stored dtype, and the rest in float32: biases, layer norms, the
 *     class token, position embeddings, the abstractor's queries and its position tables (stored or
 *     computed); {@code vit_eos} stays on the host
 * @param workspaceBytesPerImage per image, float32: its patches; per ViT token the embeddings,
 *     residual stream, normed copy, attention context and projection, the last hidden state (6 x
 *     hidden), the fused QKV (3 x hidden) and the MLP's intermediate row; per abstractor query its
 *     rows, q, cross-attention context, projection and normed copy (5 x d), gate and up and the
 *     visual_fc row; per abstractor key (queries and ViT tokens) the key-value rows, their
 *     positioned copy, k and v (4 x d)
 */
public record VisionFootprint(long weightBytes, long workspaceBytesPerImage) {

  private static final int F32_BYTES = 4;

  /**
   * The footprint of {@code checkpoint}'s tower ({@code config}) with its weight matrices held as
   * {@code weights}.
   *
   * @throws IllegalArgumentException when the config has no vision tower or the weights are quantized
   */
  public static VisionFootprint of(ModelConfig config, Checkpoint checkpoint, WeightFormat weights) {
    if (!config.multimodal()) {
      throw new IllegalArgumentException(
          "model_type \"%s\" has no vision tower (only \"mplug_owl2\" does)".formatted(config.modelType()));
    }
    VisionConfig vision = config.vision();
    AbstractorConfig abstractor = config.abstractor();
    long bytes = 0;
    for (String name : checkpoint.names()) {
      if (name.startsWith(VisionEncoder.PREFIX) || name.startsWith(VisualAbstractor.PREFIX)) {
        bytes += deviceBytes(name, checkpoint.tensor(name), weights);
      }
    }
    // position tables the checkpoint lacks are computed (spec §11 pitfall 16) and uploaded all the same
    for (int l = 0; l < abstractor.numLayers(); l++) {
      String attention = VisualAbstractor.PREFIX + "encoder.layers." + l + ".crossattention.attention.";
      if (!checkpoint.contains(attention + "q_pos_embed")) {
        bytes += (long) F32_BYTES * abstractor.numQueries() * abstractor.hiddenSize();
      }
      if (!checkpoint.contains(attention + "k_pos_embed")) {
        bytes += (long) F32_BYTES * vision.numTokens() * abstractor.hiddenSize();
      }
    }
    long h = vision.hiddenSize();
    long d = abstractor.hiddenSize();
    long queries = abstractor.numQueries();
    long keys = queries + vision.numTokens();
    long floats = (long) vision.numPatches() * vision.numChannels() * vision.patchSize() * vision.patchSize()
        + vision.numTokens() * (9 * h + vision.intermediateSize())
        + queries * (5 * d + 2L * abstractor.intermediateSize() + config.text().hiddenSize())
        + keys * 4 * d;
    return new VisionFootprint(bytes, F32_BYTES * floats);
  }

  /** What one checkpoint tensor of the tower takes on the device. */
  private static long deviceBytes(String name, Tensor tensor, WeightFormat weights) {
    if (name.equals(VisualAbstractor.PREFIX + "vit_eos")) {
      return 0; // appended on the host
    }
    if (name.equals(VisionEncoder.PREFIX + "embeddings.patch_embed.weight")) {
      return tensor.dtype().bytesOf(tensor.numElements()); // the convolution keeps its stored dtype
    }
    if (name.endsWith(".weight") && tensor.rank() == 2) {
      return SliceFootprint.deviceDtype(weights, tensor.dtype()).bytesOf(tensor.numElements());
    }
    return DType.F32.bytesOf(tensor.numElements());
  }

  /** Weights and the workspace of a pass of {@code images} images. */
  public long bytes(int images) {
    return weightBytes + images * workspaceBytesPerImage;
  }
}
