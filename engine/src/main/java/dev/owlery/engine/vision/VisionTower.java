package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.kernel.Kernels;

/**
 * The whole vision path of one image ({@code encode_images}, spec §0): ViT then abstractor, pixel
 * values in, {@code numQueries + 1} rows of LLM-width visual embeddings out. Images are independent;
 * encode each on its own, in any order, from any thread.
 */
public final class VisionTower {

  private final VisionEncoder encoder;
  private final VisualAbstractor abstractor;

  /**
   * Loads the vision model and abstractor of an mPLUG-Owl2 checkpoint.
   *
   * @throws IllegalArgumentException when the config is not multimodal, its vision and abstractor
   *     sections disagree (spec §3), or a tensor is missing or misshapen
   */
  public VisionTower(ModelConfig config, Checkpoint checkpoint, Kernels kernels) {
    if (!config.multimodal()) {
      throw new IllegalArgumentException(
          "model_type \"%s\" has no vision tower (only \"mplug_owl2\" does)".formatted(config.modelType()));
    }
    VisionConfig vision = config.vision();
    AbstractorConfig abstractorConfig = config.abstractor();
    if (abstractorConfig.encoderHiddenSize() != vision.hiddenSize()) {
      throw new IllegalArgumentException(
          "visual_abstractor.encoder_hidden_size (%d) must equal visual_model.hidden_size (%d) (spec §3)"
              .formatted(abstractorConfig.encoderHiddenSize(), vision.hiddenSize()));
    }
    if (abstractorConfig.gridSize() != vision.gridSize()) {
      throw new IllegalArgumentException(
          "visual_abstractor.grid_size (%d) must equal image_size / patch_size (%d) (spec §3)"
              .formatted(abstractorConfig.gridSize(), vision.gridSize()));
    }
    this.encoder = new VisionEncoder(vision, checkpoint, kernels);
    this.abstractor = new VisualAbstractor(abstractorConfig, config.text().hiddenSize(), checkpoint, kernels);
  }

  public VisionEncoder encoder() {
    return encoder;
  }

  public VisualAbstractor abstractor() {
    return abstractor;
  }

  /** Floats {@link #encode} expects: {@code 3 · imageSize · imageSize}, CHW. */
  public int numPixelValues() {
    return encoder.numPixelValues();
  }

  /** Visual rows per image: {@code numQueries + 1}. */
  public int numVisualTokens() {
    return abstractor.numVisualTokens();
  }

  /** Width of each visual row: the LLM's {@code hidden_size}. */
  public int hiddenSize() {
    return abstractor.outputHiddenSize();
  }

  /** Same as {@link #encode(float[], ActivationTap)} without a tap. */
  public float[] encode(float[] pixelValues) {
    return encode(pixelValues, ActivationTap.NONE);
  }

  /**
   * One image's pixel values (CHW, {@link #numPixelValues()} floats) to its visual embeddings,
   * {@code [numVisualTokens, hiddenSize]} row-major.
   *
   * @throws IllegalArgumentException when the input has the wrong length or a non-finite value
   */
  public float[] encode(float[] pixelValues, ActivationTap tap) {
    return abstractor.forward(encoder.forward(pixelValues, tap), tap);
  }
}
