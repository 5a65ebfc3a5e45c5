package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The CLIP-style ViT ({@code MplugOwlVisionModel}, spec §2): patch embedding, CLS token, learned
 * positions, {@code pre_layernorm}, pre-norm layers, then {@code post_layernorm} on every token of
 * the last layer (CLS included) — the abstractor's input.
 *
 * <p>Immutable after construction; {@link #forward} allocates its own buffers, so concurrent calls
 * are safe.
 */
public final class VisionEncoder {

  /** State-dict prefix of the vision model (spec §8). */
  public static final String PREFIX = "model.vision_model.";

  private final VisionConfig config;
  private final Kernels kernels;
  private final int patchVectorSize;

  private final Matrix patchEmbed; // [hiddenSize, numChannels·patchSize·patchSize], (c, kh, kw) order
  private final Matrix clsToken; // [1, hiddenSize]
  private final Matrix positionEmbedding; // [numTokens, hiddenSize]
  private final LayerNorm preLayernorm;
  private final List<VisionEncoderLayer> layers;
  private final LayerNorm postLayernorm;

  /** Loads every vision weight from {@code checkpoint}, each shape checked against {@code config}. */
  public VisionEncoder(VisionConfig config, Checkpoint checkpoint, Kernels kernels) {
    this.config = config;
    this.kernels = kernels;
    int hidden = config.hiddenSize();
    int patch = config.patchSize();
    this.patchVectorSize = config.numChannels() * patch * patch;
    Tensor conv = checkpoint.tensor(
        PREFIX + "embeddings.patch_embed.weight", hidden, config.numChannels(), patch, patch);
    // Conv2d with kernel = stride = patch and no bias is a matmul over flattened (c, kh, kw) patches.
    this.patchEmbed = new Matrix(conv.name(), conv.data(), conv.dtype(), hidden, patchVectorSize, patchVectorSize, 0);
    this.clsToken = checkpoint.tensor(PREFIX + "embeddings.cls_token", 1, 1, hidden).asMatrix();
    this.positionEmbedding =
        checkpoint.tensor(PREFIX + "embeddings.position_embedding", 1, config.numTokens(), hidden).asMatrix();
    float eps = config.layerNormEps();
    this.preLayernorm = LayerNorm.load(checkpoint, PREFIX + "embeddings.pre_layernorm", hidden, eps);
    List<VisionEncoderLayer> loaded = new ArrayList<>(config.numLayers());
    for (int l = 0; l < config.numLayers(); l++) {
      loaded.add(new VisionEncoderLayer(config, checkpoint, PREFIX + "encoder.layers." + l, kernels));
    }
    this.layers = List.copyOf(loaded);
    this.postLayernorm = LayerNorm.load(checkpoint, PREFIX + "post_layernorm", hidden, eps);
  }

  public VisionConfig config() {
    return config;
  }

  /** Floats one image's pixel values must have: {@code numChannels · imageSize · imageSize} (CHW). */
  public int numPixelValues() {
    return config.numChannels() * config.imageSize() * config.imageSize();
  }

  /** Same as {@link #forward(float[], ActivationTap)} without a tap. */
  public float[] forward(float[] pixelValues) {
    return forward(pixelValues, ActivationTap.NONE);
  }

  /**
   * Encodes one image: CHW pixel values ({@link #numPixelValues()} floats, as the preprocessor
   * produces) to {@code last_hidden_state}, {@code [numTokens, hiddenSize]} row-major.
   *
   * @throws IllegalArgumentException when the input has the wrong length or a non-finite value
   */
  public float[] forward(float[] pixelValues, ActivationTap tap) {
    requireValidPixels(pixelValues);
    int numTokens = config.numTokens();
    int size = numTokens * config.hiddenSize();
    // embeddings = [cls; patch_embed(pixels)] + position_embedding, then pre_layernorm
    float[] embeddings = embed(pixelValues);
    float[] hidden = new float[size];
    preLayernorm.forward(kernels, embeddings, 0, hidden, 0, numTokens);
    tap.record("vision.embeddings", hidden, 0, size);
    VisionEncoderLayer.Buffers buffers = new VisionEncoderLayer.Buffers(config);
    for (int l = 0; l < layers.size(); l++) {
      layers.get(l).forward(hidden, buffers);
      tap.record("vision.layer." + l + ".output", hidden, 0, size);
    }
    // post_layernorm on all tokens of the last layer, CLS included (spec §11 pitfall 2)
    float[] lastHiddenState = new float[size];
    postLayernorm.forward(kernels, hidden, 0, lastHiddenState, 0, numTokens);
    tap.record("vision.last_hidden_state", lastHiddenState, 0, size);
    return lastHiddenState;
  }

  /** CLS row, then one patch-embedding row per patch in row-major order, plus the learned positions. */
  private float[] embed(float[] pixelValues) {
    int hidden = config.hiddenSize();
    int numPatches = config.numPatches();
    float[] patches = new float[numPatches * patchVectorSize];
    gatherPatches(config, pixelValues, patches, 0);
    float[] embeddings = new float[config.numTokens() * hidden];
    kernels.matmul(patchEmbed, patches, 0, embeddings, hidden, numPatches);
    for (int i = 0; i < hidden; i++) {
      embeddings[i] = clsToken.get(0, i);
    }
    for (int t = 0; t < config.numTokens(); t++) {
      for (int i = 0; i < hidden; i++) {
        embeddings[t * hidden + i] += positionEmbedding.get(t, i);
      }
    }
    return embeddings;
  }

  /**
   * One image's patches as the conv weight reads them, into {@code patches} from {@code offset}: patch
   * p = row·gridSize + col becomes {@code numChannels · patchSize²} floats ordered (channel, kh, kw)
   * (also the device tower's host step).
   */
  public static void gatherPatches(VisionConfig config, float[] pixelValues, float[] patches, int offset) {
    int imageSize = config.imageSize();
    int patch = config.patchSize();
    int grid = config.gridSize();
    int out = offset;
    for (int row = 0; row < grid; row++) {
      for (int col = 0; col < grid; col++) {
        for (int c = 0; c < config.numChannels(); c++) {
          for (int kh = 0; kh < patch; kh++) {
            int from = (c * imageSize + row * patch + kh) * imageSize + col * patch;
            System.arraycopy(pixelValues, from, patches, out, patch);
            out += patch;
          }
        }
      }
    }
  }

  private void requireValidPixels(float[] pixelValues) {
    int expected = numPixelValues();
    if (pixelValues.length != expected) {
      throw new IllegalArgumentException(
          "pixel values: expected %d x %d x %d = %d floats (CHW), got %d"
              .formatted(config.numChannels(), config.imageSize(), config.imageSize(), expected, pixelValues.length));
    }
    for (int i = 0; i < pixelValues.length; i++) {
      if (!Float.isFinite(pixelValues[i])) {
        throw new IllegalArgumentException("pixel values: element %d is %s, must be finite".formatted(i, pixelValues[i]));
      }
    }
  }
}
