package dev.owlery.visionworker;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.forward.DeviceVisionTower;
import dev.owlery.engine.cuda.plan.VisionFootprint;
import dev.owlery.engine.cuda.plan.VisionMemoryPlan;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.VisionTower;
import dev.owlery.engine.vision.preprocess.ImageDecoder;
import dev.owlery.engine.vision.preprocess.ImagePreprocessor;
import dev.owlery.engine.vision.preprocess.PreprocessorConfig;
import java.nio.file.Path;

/**
 * The vision half of an mPLUG-Owl2 checkpoint, loaded once: image decoder, preprocessor and the
 * vision tower, on the host or on a device ({@link ImageEncoder}; the decoder's weights stay
 * unmapped). Thread-safe: images are encoded independently.
 */
public final class VisionModel implements AutoCloseable {

  private final Path directory;
  private final Checkpoint checkpoint;
  private final ImageEncoder encoder;
  private final ImagePreprocessor preprocessor;
  private final ImageDecoder decoder = new ImageDecoder();

  private VisionModel(Path directory, Checkpoint checkpoint, ImageEncoder encoder, ImagePreprocessor preprocessor) {
    this.directory = directory;
    this.checkpoint = checkpoint;
    this.encoder = encoder;
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
    ModelConfig config = multimodalConfig(directory);
    Checkpoint checkpoint = Checkpoints.open(directory).withWeightFormat(weights);
    try {
      return new VisionModel(directory, checkpoint, new HostImageEncoder(new VisionTower(config, checkpoint, kernels)),
          preprocessor(directory, config));
    } catch (RuntimeException e) {
      checkpoint.close();
      throw e;
    }
  }

  /**
   * As {@link #load(Path, Kernels, WeightFormat)} with the tower on {@code device} (which the model
   * then owns and closes): weights uploaded once, images encoded in passes of up to
   * {@code maxBatchImages}, at most {@code maxQueuedImages} waiting (preprocessing stays on the host),
   * each pass size replayed from graphs captured on its first pass. The weights and a pass's workspace must fit in {@code gpuMemoryUtilization} of {@code memory}
   * (the device as probed), checked before anything is uploaded.
   *
   * @throws IllegalArgumentException when they do not ({@link VisionMemoryPlan} says by how much)
   */
  public static VisionModel loadOnDevice(Path directory, WeightFormat weights, Device device, CudaDevice memory,
      double gpuMemoryUtilization, int maxBatchImages, int maxQueuedImages) {
    Checkpoint checkpoint = null;
    try {
      ModelConfig config = multimodalConfig(directory);
      checkpoint = Checkpoints.open(directory).withWeightFormat(weights);
      VisionMemoryPlan.of(memory, gpuMemoryUtilization, VisionFootprint.of(config, checkpoint, weights),
          maxBatchImages);
      DeviceVisionTower tower = new DeviceVisionTower(device, config, checkpoint, maxBatchImages);
      tower.capturePasses();
      ImagePreprocessor preprocessor = preprocessor(directory, config);
      return new VisionModel(directory, checkpoint, new DeviceImageEncoder(device, tower, maxQueuedImages).start(),
          preprocessor);
    } catch (RuntimeException e) {
      if (checkpoint != null) {
        checkpoint.close();
      }
      device.close();
      throw e;
    }
  }

  private static ModelConfig multimodalConfig(Path directory) {
    ModelConfig config = ModelConfig.load(directory);
    if (!config.multimodal()) {
      throw new IllegalArgumentException("%s: model_type \"%s\" has no vision tower; a vision worker needs an %s checkpoint"
          .formatted(directory, config.modelType(), ModelConfig.MPLUG_OWL2));
    }
    return config;
  }

  private static ImagePreprocessor preprocessor(Path directory, ModelConfig config) {
    return new ImagePreprocessor(PreprocessorConfig.forModel(directory, config.vision().imageSize()));
  }

  public Path directory() {
    return directory;
  }

  /** The vision tower, on the host or on a device. */
  ImageEncoder encoder() {
    return encoder;
  }

  public ImagePreprocessor preprocessor() {
    return preprocessor;
  }

  public ImageDecoder decoder() {
    return decoder;
  }

  /** Stops the encoder (on a device: runs what is queued, then closes the device) and unmaps the weights. */
  @Override
  public void close() {
    try {
      encoder.close();
    } finally {
      checkpoint.close();
    }
  }
}
