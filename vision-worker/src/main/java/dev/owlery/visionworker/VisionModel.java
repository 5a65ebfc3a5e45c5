package dev.owlery.visionworker;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.VisionTower;
import dev.owlery.engine.vision.preprocess.ImageDecoder;
import dev.owlery.engine.vision.preprocess.ImagePreprocessor;
import dev.owlery.engine.vision.preprocess.PreprocessorConfig;
import java.nio.file.Path;

/**
 * The vision half of an mPLUG-Owl2 checkpoint, loaded once: image decoder, preprocessor and vision
 * tower (the decoder's weights stay unmapped). Thread-safe: images are encoded independently.
 */
public final class VisionModel implements AutoCloseable {

  private final Path directory;
  private final Checkpoint checkpoint;
  private final VisionTower tower;
  private final ImagePreprocessor preprocessor;
  private final ImageDecoder decoder = new ImageDecoder();

  private VisionModel(Path directory, Checkpoint checkpoint, VisionTower tower, ImagePreprocessor preprocessor) {
    this.directory = directory;
    this.checkpoint = checkpoint;
    this.tower = tower;
    this.preprocessor = preprocessor;
  }

  /**
   * Loads {@code directory}'s vision tower and preprocessor settings (preprocessor_config.json, or
   * the CLIP defaults for the tower's image size when the file is absent, as the engine's
   * in-process model does).
   *
   * @throws IllegalArgumentException when the checkpoint is not multimodal or its parts disagree
   */
  public static VisionModel load(Path directory, Kernels kernels) {
    return load(directory, kernels, WeightFormat.STORED);
  }

  /** As {@link #load(Path, Kernels)}, with the tower's weight matrices converted to {@code weights} at load. */
  public static VisionModel load(Path directory, Kernels kernels, WeightFormat weights) {
    ModelConfig config = ModelConfig.load(directory);
    if (!config.multimodal()) {
      throw new IllegalArgumentException("%s: model_type \"%s\" has no vision tower; a vision worker needs an %s checkpoint"
          .formatted(directory, config.modelType(), ModelConfig.MPLUG_OWL2));
    }
    PreprocessorConfig preprocessorConfig = PreprocessorConfig.forModel(directory, config.vision().imageSize());
    Checkpoint checkpoint = Checkpoints.open(directory).withWeightFormat(weights);
    try {
      return new VisionModel(directory, checkpoint, new VisionTower(config, checkpoint, kernels),
          new ImagePreprocessor(preprocessorConfig));
    } catch (RuntimeException e) {
      checkpoint.close();
      throw e;
    }
  }

  public Path directory() {
    return directory;
  }

  public VisionTower tower() {
    return tower;
  }

  public ImagePreprocessor preprocessor() {
    return preprocessor;
  }

  public ImageDecoder decoder() {
    return decoder;
  }

  @Override
  public void close() {
    checkpoint.close();
  }
}
