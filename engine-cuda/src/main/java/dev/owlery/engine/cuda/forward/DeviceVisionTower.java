package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DeviceGraph;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.cuda.runtime.KernelArguments;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.vision.SinCosPositionEmbedding;
import dev.owlery.engine.vision.VisionEncoder;
import dev.owlery.engine.vision.VisualAbstractor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The whole vision path ({@code encode_images}, spec §0) on a {@link Device}, the device twin of the
 * engine's {@code VisionTower}: the CLIP ViT (patch embedding, CLS, positions, pre-norm layers,
 * {@code post_layernorm}) and the visual abstractor, for a batch of up to {@link #maxImages()} images
 * per pass. Weights are uploaded once, matrices in the checkpoint's served dtype (as the CPU layers
 * load them), norms, biases and tables as float32. The host gathers each image's patches (a copy);
 * everything from the patch embedding's product to {@code visual_fc} runs on the device, and only
 * the visual rows come back.
 *
 * <p>One thread uses a tower (and its device) at a time; {@link #encode} is synchronized.
 */
public final class DeviceVisionTower {

  /** Visual rows of a batch and how long each half took on the device. */
  public record Encoded(List<float[]> visualEmbeds, long visionNs, long abstractorNs) {}

  private final Device device;
  private final VisionConfig vision;
  private final AbstractorConfig abstractor;
  private final int outputHiddenSize;
  private final int maxImages;
  private final int patchVectorSize;
  private final DeviceMatrix patchEmbed; // [hiddenSize, numChannels * patchSize^2], (c, kh, kw) order
  private final DevicePointer clsToken; // float32 [hiddenSize]
  private final DevicePointer positionEmbedding; // float32 [numTokens, hiddenSize]
  private final DeviceLayerNorm preLayernorm;
  private final List<DeviceVisionEncoderLayer> encoderLayers;
  private final DeviceLayerNorm postLayernorm;
  private final DevicePointer queryEmbeds; // float32 [numQueries, d]
  private final List<DeviceVisualAbstractorLayer> abstractorLayers;
  private final DeviceLinear visualFc;
  private final float[] vitEos; // [outputHiddenSize], appended on the host
  private final DeviceVisionActivations activations;
  private final float[] patches;
  /** Per pass size, the ViT's and the abstractor's launches as graphs; null: every pass launched eagerly. */
  private Map<Integer, PassGraphs> passGraphs;

  /** One pass size's recorded launches: the ViT's, then the abstractor's (timed apart). */
  private record PassGraphs(DeviceGraph vision, DeviceGraph abstractor) {}

  /**
   * Loads the vision model and abstractor of an mPLUG-Owl2 checkpoint onto {@code device}, buffers for
   * {@code maxImages} images per pass.
   *
   * @throws IllegalArgumentException when the config is not multimodal, its parts disagree (spec §3), a
   *     head is wider than the attention kernel takes, or a tensor is missing or misshapen
   */
  public DeviceVisionTower(Device device, ModelConfig config, Checkpoint checkpoint, int maxImages) {
    if (!config.multimodal()) {
      throw new IllegalArgumentException(
          "model_type \"%s\" has no vision tower (only \"mplug_owl2\" does)".formatted(config.modelType()));
    }
    int numTokens = config.vision().numTokens();
    if (maxImages < 1 || (long) maxImages * numTokens > KernelArguments.MAX_GRID_Y) {
      throw new IllegalArgumentException(("images per pass must be 1..%d (a pass's %d-token rows take one grid row "
          + "each in the F32 product, at most %d). Given: %d").formatted(KernelArguments.MAX_GRID_Y / numTokens,
          numTokens, KernelArguments.MAX_GRID_Y, maxImages));
    }
    this.device = device;
    this.vision = config.vision();
    this.abstractor = config.abstractor();
    this.outputHiddenSize = config.text().hiddenSize();
    this.maxImages = maxImages;
    checkShapes();
    String prefix = VisionEncoder.PREFIX;
    int hidden = vision.hiddenSize();
    int patch = vision.patchSize();
    this.patchVectorSize = vision.numChannels() * patch * patch;
    // Conv2d with kernel = stride = patch and no bias is a product over flattened (c, kh, kw) patches;
    // its weight keeps the stored dtype, as VisionEncoder keeps it.
    Tensor conv = checkpoint.tensor(prefix + "embeddings.patch_embed.weight", hidden, vision.numChannels(), patch,
        patch);
    this.patchEmbed = DeviceMatrix.upload(device,
        new Matrix(conv.name(), conv.data(), conv.dtype(), hidden, patchVectorSize, patchVectorSize, 0));
    this.clsToken = device.upload(checkpoint.tensor(prefix + "embeddings.cls_token", 1, 1, hidden).toFloatArray());
    this.positionEmbedding = device.upload(
        checkpoint.tensor(prefix + "embeddings.position_embedding", 1, vision.numTokens(), hidden).toFloatArray());
    float eps = vision.layerNormEps();
    this.preLayernorm = DeviceLayerNorm.load(device, checkpoint, prefix + "embeddings.pre_layernorm", hidden, eps);
    List<DeviceVisionEncoderLayer> encoder = new ArrayList<>(vision.numLayers());
    for (int l = 0; l < vision.numLayers(); l++) {
      encoder.add(new DeviceVisionEncoderLayer(device, vision, checkpoint, prefix + "encoder.layers." + l));
    }
    this.encoderLayers = List.copyOf(encoder);
    this.postLayernorm = DeviceLayerNorm.load(device, checkpoint, prefix + "post_layernorm", hidden, eps);
    String abstractorPrefix = VisualAbstractor.PREFIX;
    int d = abstractor.hiddenSize();
    int numQueries = abstractor.numQueries();
    this.queryEmbeds = device.upload(
        checkpoint.tensor(abstractorPrefix + "query_embeds", 1, numQueries, d).toFloatArray());
    List<DeviceVisualAbstractorLayer> layers = new ArrayList<>(abstractor.numLayers());
    for (int l = 0; l < abstractor.numLayers(); l++) {
      String layer = abstractorPrefix + "encoder.layers." + l;
      layers.add(new DeviceVisualAbstractorLayer(device, abstractor, checkpoint, layer,
          device.upload(positionTables(checkpoint, layer + ".crossattention.attention."))));
    }
    this.abstractorLayers = List.copyOf(layers);
    this.visualFc = DeviceLinear.load(device, checkpoint, abstractorPrefix + "visual_fc", outputHiddenSize, d);
    this.vitEos = checkpoint.tensor(abstractorPrefix + "vit_eos", 1, 1, outputHiddenSize).toFloatArray();
    this.activations = new DeviceVisionActivations(device, vision, abstractor, outputHiddenSize, maxImages);
    this.patches = new float[Math.multiplyExact(maxImages * vision.numPatches(), patchVectorSize)];
  }

  private void checkShapes() {
    if (abstractor.encoderHiddenSize() != vision.hiddenSize() || abstractor.hiddenSize() != vision.hiddenSize()) {
      throw new IllegalArgumentException(("visual_abstractor.encoder_hidden_size (%d) and hidden_size (%d) must equal "
          + "visual_model.hidden_size (%d) (spec §3)").formatted(abstractor.encoderHiddenSize(),
          abstractor.hiddenSize(), vision.hiddenSize()));
    }
    if (abstractor.gridSize() != vision.gridSize()) {
      throw new IllegalArgumentException("visual_abstractor.grid_size (%d) must equal image_size / patch_size (%d) "
          .formatted(abstractor.gridSize(), vision.gridSize()) + "(spec §3)");
    }
    int widest = Math.max(vision.headDim(), abstractor.headDim());
    if (widest > PtxKernels.MAX_FULL_ATTENTION_HEAD_DIM) {
      throw new IllegalArgumentException("the device's vision attention takes heads of at most %d dimensions; this "
          .formatted(PtxKernels.MAX_FULL_ATTENTION_HEAD_DIM) + "model's are %d".formatted(widest));
    }
  }

  /** {@code [P_q; P_k]} of one layer: the stored buffers when there, else computed (spec §11 pitfall 16). */
  private float[] positionTables(Checkpoint checkpoint, String attention) {
    int d = abstractor.hiddenSize();
    int numQueries = abstractor.numQueries();
    int numImageTokens = vision.numTokens();
    float[] query = checkpoint.contains(attention + "q_pos_embed")
        ? checkpoint.tensor(attention + "q_pos_embed", numQueries, d).toFloatArray()
        : SinCosPositionEmbedding.queryTable(d, numQueries);
    float[] key = checkpoint.contains(attention + "k_pos_embed")
        ? checkpoint.tensor(attention + "k_pos_embed", numImageTokens, d).toFloatArray()
        : SinCosPositionEmbedding.keyTable(d, abstractor.gridSize());
    float[] both = new float[query.length + key.length];
    System.arraycopy(query, 0, both, 0, query.length);
    System.arraycopy(key, 0, both, query.length, key.length);
    return both;
  }

  /** Images one pass takes at most. */
  public int maxImages() {
    return maxImages;
  }

  /** Floats each image's pixel values must have: {@code numChannels · imageSize · imageSize} (CHW). */
  public int numPixelValues() {
    return vision.numChannels() * vision.imageSize() * vision.imageSize();
  }

  /** Visual rows per image: {@code numQueries + 1}. */
  public int numVisualTokens() {
    return abstractor.numQueries() + 1;
  }

  /** Width of each visual row: the LLM's {@code hidden_size}. */
  public int hiddenSize() {
    return outputHiddenSize;
  }

  /**
   * Encodes {@code pixelValues} (each image CHW, {@link #numPixelValues()} floats, as the preprocessor
   * produces) in one pass: per image its visual embeddings {@code [numVisualTokens, hiddenSize]}, in order.
   *
   * @throws IllegalArgumentException when there are no images or more than {@link #maxImages()}, or an
   *     image has the wrong length or a non-finite value; nothing has run then
   */
  public synchronized Encoded encode(List<float[]> pixelValues) {
    int numImages = pixelValues.size();
    if (numImages < 1 || numImages > maxImages) {
      throw new IllegalArgumentException("a vision pass takes 1..%d images. Given: %d".formatted(maxImages, numImages));
    }
    for (int i = 0; i < numImages; i++) {
      requireValidPixels(i, pixelValues.get(i));
    }
    long start = System.nanoTime();
    stageInputs(pixelValues);
    PassGraphs graphs = passGraphs == null ? null : passGraphs.computeIfAbsent(numImages,
        n -> new PassGraphs(device.capture(() -> encodeImages(n)), device.capture(() -> abstractImages(n))));
    if (graphs == null) {
      encodeImages(numImages);
    } else {
      graphs.vision().replay();
    }
    device.synchronize();
    long visionEnd = System.nanoTime();
    if (graphs == null) {
      abstractImages(numImages);
    } else {
      graphs.abstractor().replay();
    }
    int numQueries = abstractor.numQueries();
    List<float[]> out = new ArrayList<>(numImages);
    for (int img = 0; img < numImages; img++) {
      // visual_embeds = [visual_fc(Q); vit_eos]: vit_eos appended as is (spec §11 pitfall 7)
      float[] visualEmbeds = new float[numVisualTokens() * outputHiddenSize];
      device.copyToHost(visualEmbeds, 0, activations.visualEmbeds.plusWords((long) img * numQueries * outputHiddenSize),
          numQueries * outputHiddenSize);
      System.arraycopy(vitEos, 0, visualEmbeds, numQueries * outputHiddenSize, outputHiddenSize);
      out.add(visualEmbeds);
    }
    return new Encoded(List.copyOf(out), visionEnd - start, System.nanoTime() - visionEnd);
  }

  /**
   * From now on, each pass runs from two graphs (the ViT's launches, the abstractor's) captured the
   * first time its number of images is seen: a replay each instead of a launch per kernel (CUDA
   * graphs on the GPU; about ten launches per layer). The copies a pass needs first (its patches,
   * the CLS rows, the abstractor's queries) stay outside the graphs.
   */
  public synchronized void capturePasses() {
    if (passGraphs == null) {
      passGraphs = new HashMap<>();
    }
  }

  /** The pass sizes captured so far (for tests). */
  synchronized Set<Integer> capturedPassSizes() {
    return passGraphs == null ? Set.of() : Set.copyOf(passGraphs.keySet());
  }

  /**
   * What a pass's launches read besides the weights: each image's patches, its CLS row in front of
   * its embeddings, and the abstractor's learned queries as the residual its layers update.
   */
  private void stageInputs(List<float[]> pixelValues) {
    int numImages = pixelValues.size();
    int hidden = vision.hiddenSize();
    int numTokens = vision.numTokens();
    int numPatches = vision.numPatches();
    for (int img = 0; img < numImages; img++) {
      VisionEncoder.gatherPatches(vision, pixelValues.get(img), patches, img * numPatches * patchVectorSize);
    }
    DeviceVisionActivations a = activations;
    device.copyToDevice(a.patches, patches, 0, numImages * numPatches * patchVectorSize);
    int d = abstractor.hiddenSize();
    int numQueries = abstractor.numQueries();
    for (int img = 0; img < numImages; img++) {
      device.copy(a.embeddings.plusWords((long) img * numTokens * hidden), clsToken, 4L * hidden);
      device.copy(a.queries.plusWords((long) img * numQueries * d), queryEmbeds, 4L * numQueries * d);
    }
  }

  /** The ViT over every image: {@code activations.imageFeatures} = post_layernorm(last layer's rows). */
  private void encodeImages(int numImages) {
    int hidden = vision.hiddenSize();
    int numTokens = vision.numTokens();
    int numPatches = vision.numPatches();
    DeviceVisionActivations a = activations;
    // embeddings = [cls; patch_embed(pixels)] + position_embedding, then pre_layernorm
    for (int img = 0; img < numImages; img++) {
      DevicePointer image = a.embeddings.plusWords((long) img * numTokens * hidden);
      patchEmbed.multiply(device, a.patches.plusWords((long) img * numPatches * patchVectorSize),
          image.plusWords(hidden), numPatches);
    }
    int n = numImages * numTokens;
    device.launch(PtxKernels.ADD_TABLE, DeviceDecoderLayer.strideGrid(PtxKernels.ADD_TABLE, (long) n * hidden), 1,
        a.embeddings, a.embeddings, positionEmbedding, n * hidden, numTokens * hidden);
    preLayernorm.forward(device, a.embeddings, a.hidden, n);
    for (DeviceVisionEncoderLayer layer : encoderLayers) {
      layer.forward(a, numImages, numTokens);
    }
    // post_layernorm on all tokens of the last layer, CLS included (spec §11 pitfall 2)
    postLayernorm.forward(device, a.hidden, a.imageFeatures, n);
  }

  /** The abstractor over every image's features, then visual_fc into {@code activations.visualEmbeds}. */
  private void abstractImages(int numImages) {
    int numQueries = abstractor.numQueries();
    DeviceVisionActivations a = activations;
    for (DeviceVisualAbstractorLayer layer : abstractorLayers) {
      layer.forward(a, numImages, numQueries, vision.numTokens());
    }
    visualFc.forward(device, a.queries, a.visualEmbeds, numImages * numQueries);
  }

  private void requireValidPixels(int image, float[] pixelValues) {
    int expected = numPixelValues();
    if (pixelValues.length != expected) {
      throw new IllegalArgumentException("image %d's pixel values: expected %d x %d x %d = %d floats (CHW), got %d"
          .formatted(image, vision.numChannels(), vision.imageSize(), vision.imageSize(), expected,
              pixelValues.length));
    }
    for (int i = 0; i < pixelValues.length; i++) {
      if (!Float.isFinite(pixelValues[i])) {
        throw new IllegalArgumentException("image %d's pixel values: element %d is %s, must be finite"
            .formatted(image, i, pixelValues[i]));
      }
    }
  }
}
