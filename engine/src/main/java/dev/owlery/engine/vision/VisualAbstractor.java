package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The visual abstractor ({@code MplugOwlVisualAbstractorModel}, spec §3): learnable queries
 * cross-attend over the ViT output layer by layer, then {@code visual_fc} projects them to the LLM
 * width and the learned {@code vit_eos} row is appended — {@code numQueries + 1} visual rows.
 *
 * <p>Immutable after construction; {@link #forward} allocates its own buffers, so concurrent calls
 * are safe.
 */
public final class VisualAbstractor {

  /** State-dict prefix of the abstractor (spec §8). */
  public static final String PREFIX = "model.visual_abstractor.";

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final AbstractorConfig config;
  private final Kernels kernels;
  private final int outputHiddenSize;
  private final int numImageTokens;

  private final Matrix queryEmbeds; // [numQueries, hiddenSize]
  private final List<VisualAbstractorLayer> layers;
  private final Linear visualFc;
  private final Matrix vitEos; // [1, outputHiddenSize]
  private final boolean storedPositionTables;

  /**
   * Loads every abstractor weight from {@code checkpoint}, each shape checked against the config.
   * The per-layer {@code q_pos_embed} / {@code k_pos_embed} buffers are used when the checkpoint
   * has them (spec §11 pitfall 16), else computed ({@link SinCosPositionEmbedding}).
   *
   * @param llmHiddenSize the decoder's {@code hidden_size}: the width of {@code visual_fc}'s output
   *     and of {@code vit_eos}
   */
  public VisualAbstractor(AbstractorConfig config, int llmHiddenSize, Checkpoint checkpoint, Kernels kernels) {
    if (config.encoderHiddenSize() != config.hiddenSize()) {
      throw new IllegalArgumentException(
          "visual_abstractor.encoder_hidden_size (%d) must equal visual_abstractor.hidden_size (%d) (spec §3)"
              .formatted(config.encoderHiddenSize(), config.hiddenSize()));
    }
    if (llmHiddenSize <= 0) {
      throw new IllegalArgumentException("the LLM hidden_size must be positive, got " + llmHiddenSize);
    }
    this.config = config;
    this.kernels = kernels;
    this.outputHiddenSize = llmHiddenSize;
    int d = config.hiddenSize();
    int q = config.numQueries();
    this.numImageTokens = 1 + config.gridSize() * config.gridSize();
    this.queryEmbeds = checkpoint.tensor(PREFIX + "query_embeds", 1, q, d).asMatrix();
    Matrix computedQuery = null;
    Matrix computedKey = null;
    boolean allStored = true;
    List<VisualAbstractorLayer> loaded = new ArrayList<>(config.numLayers());
    for (int l = 0; l < config.numLayers(); l++) {
      String prefix = PREFIX + "encoder.layers." + l;
      String attention = prefix + ".crossattention.attention.";
      Matrix qPos;
      if (checkpoint.contains(attention + "q_pos_embed")) {
        qPos = checkpoint.tensor(attention + "q_pos_embed", q, d).asMatrix();
      } else {
        computedQuery = computedQuery != null ? computedQuery
            : f32Matrix("computed q_pos_embed", SinCosPositionEmbedding.queryTable(d, q), q, d);
        qPos = computedQuery;
        allStored = false;
      }
      Matrix kPos;
      if (checkpoint.contains(attention + "k_pos_embed")) {
        kPos = checkpoint.tensor(attention + "k_pos_embed", numImageTokens, d).asMatrix();
      } else {
        computedKey = computedKey != null ? computedKey
            : f32Matrix("computed k_pos_embed", SinCosPositionEmbedding.keyTable(d, config.gridSize()), numImageTokens, d);
        kPos = computedKey;
        allStored = false;
      }
      loaded.add(new VisualAbstractorLayer(config, checkpoint, prefix, qPos, kPos, kernels));
    }
    this.layers = List.copyOf(loaded);
    this.storedPositionTables = allStored;
    this.visualFc = Linear.load(checkpoint, PREFIX + "visual_fc", llmHiddenSize, d);
    this.vitEos = checkpoint.tensor(PREFIX + "vit_eos", 1, 1, llmHiddenSize).asMatrix();
  }

  public AbstractorConfig config() {
    return config;
  }

  /** Rows of the input: the ViT's CLS token plus one per patch, {@code 1 + gridSize²}. */
  public int numImageTokens() {
    return numImageTokens;
  }

  /** Rows of the output: {@code numQueries + 1} ({@code vit_eos} last). */
  public int numVisualTokens() {
    return config.numQueries() + 1;
  }

  /** Width of each output row: the LLM's {@code hidden_size}. */
  public int outputHiddenSize() {
    return outputHiddenSize;
  }

  /** True when every layer uses the checkpoint's stored position tables, false when any was computed. */
  public boolean storedPositionTables() {
    return storedPositionTables;
  }

  /** Same as {@link #forward(float[], ActivationTap)} without a tap. */
  public float[] forward(float[] imageFeatures) {
    return forward(imageFeatures, ActivationTap.NONE);
  }

  /**
   * Abstracts one image: the ViT's {@code last_hidden_state} ({@code [numImageTokens, hiddenSize]})
   * to the visual embeddings {@code [numQueries + 1, outputHiddenSize]}, row-major.
   *
   * @throws IllegalArgumentException when the input has the wrong length
   */
  public float[] forward(float[] imageFeatures, ActivationTap tap) {
    int d = config.hiddenSize();
    int numQueries = config.numQueries();
    if (imageFeatures.length != numImageTokens * d) {
      throw new IllegalArgumentException(
          "abstractor input: expected %d tokens x %d = %d floats, got %d"
              .formatted(numImageTokens, d, numImageTokens * d, imageFeatures.length));
    }
    float[] queries = new float[numQueries * d];
    for (int t = 0; t < numQueries; t++) {
      for (int i = 0; i < d; i++) {
        queries[t * d + i] = queryEmbeds.get(t, i);
      }
    }
    VisualAbstractorLayer.Buffers buffers = new VisualAbstractorLayer.Buffers(config, numImageTokens);
    for (int l = 0; l < layers.size(); l++) {
      layers.get(l).forward(queries, imageFeatures, buffers);
      tap.record("abstractor.layer." + l + ".output", queries, 0, queries.length);
    }
    // visual_embeds = [visual_fc(Q); vit_eos]: vit_eos is appended as is, not projected (spec §11 pitfall 7)
    float[] visualEmbeds = new float[numVisualTokens() * outputHiddenSize];
    visualFc.forward(kernels, queries, 0, visualEmbeds, 0, numQueries);
    tap.record("abstractor.visual_fc_output", visualEmbeds, 0, numQueries * outputHiddenSize);
    for (int i = 0; i < outputHiddenSize; i++) {
      visualEmbeds[numQueries * outputHiddenSize + i] = vitEos.get(0, i);
    }
    tap.record("visual_embeds", visualEmbeds, 0, visualEmbeds.length);
    return visualEmbeds;
  }

  /** A computed table as an F32 matrix, so stored (any float dtype) and computed tables read alike. */
  private static Matrix f32Matrix(String name, float[] values, int rows, int cols) {
    MemorySegment segment = Arena.ofAuto().allocate((long) values.length * Float.BYTES);
    for (int i = 0; i < values.length; i++) {
      segment.setAtIndex(F32_LE, i, values[i]);
    }
    return new Tensor(name, DType.F32, new long[] {rows, cols}, segment).asMatrix();
  }
}
