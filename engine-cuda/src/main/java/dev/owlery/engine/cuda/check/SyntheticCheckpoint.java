package dev.owlery.engine.cuda.check;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A plain LLaMA checkpoint of {@code config}'s shape made in memory, for timing: every matrix F16
 * with values drawn once ({@value #BLOCK} of them, normal with standard deviation 0.02, LLaMA's
 * initialisation) and repeated, every norm weight 1. Tensors of the same shape share one buffer, so
 * a 7B shape takes about 0.5 GB of host memory (one buffer per distinct shape), not 13 GB.
 */
final class SyntheticCheckpoint implements Checkpoint {

  /** Distinct random values, repeated through every matrix. */
  static final int BLOCK = 1 << 16;
  private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final short F16_ONE = 0x3c00;

  private final Map<String, long[]> shapes = new LinkedHashMap<>();
  private final Map<List<Long>, Tensor> buffers = new HashMap<>();
  private final short[] block = new short[BLOCK];
  private final Arena arena = Arena.ofShared();

  SyntheticCheckpoint(LlamaConfig config, long seed) {
    if (config.modalityAdaptive()) {
      throw new IllegalArgumentException(
          "the synthetic checkpoint is plain LLaMA: give a config without modality-adaptive layers");
    }
    long h = config.hiddenSize();
    shapes.put("model.embed_tokens.weight", new long[] {config.vocabSize(), h});
    for (int i = 0; i < config.numLayers(); i++) {
      String p = "model.layers." + i;
      shapes.put(p + ".input_layernorm.weight", new long[] {h});
      shapes.put(p + ".post_attention_layernorm.weight", new long[] {h});
      shapes.put(p + ".self_attn.q_proj.weight", new long[] {config.qSize(), h});
      shapes.put(p + ".self_attn.k_proj.weight", new long[] {config.kvSize(), h});
      shapes.put(p + ".self_attn.v_proj.weight", new long[] {config.kvSize(), h});
      shapes.put(p + ".self_attn.o_proj.weight", new long[] {h, config.qSize()});
      shapes.put(p + ".mlp.gate_proj.weight", new long[] {config.intermediateSize(), h});
      shapes.put(p + ".mlp.up_proj.weight", new long[] {config.intermediateSize(), h});
      shapes.put(p + ".mlp.down_proj.weight", new long[] {h, config.intermediateSize()});
    }
    shapes.put("model.norm.weight", new long[] {h});
    shapes.put("lm_head.weight", new long[] {config.vocabSize(), h});
    Random random = new Random(seed);
    for (int i = 0; i < BLOCK; i++) {
      block[i] = Float.floatToFloat16((float) (0.02 * random.nextGaussian()));
    }
  }

  @Override
  public Path location() {
    return Path.of("synthetic");
  }

  @Override
  public Set<String> names() {
    return shapes.keySet();
  }

  @Override
  public boolean contains(String name) {
    return shapes.containsKey(name);
  }

  @Override
  public Tensor tensor(String name) {
    long[] shape = shapes.get(name);
    if (shape == null) {
      throw new IllegalArgumentException("the synthetic LLaMA checkpoint has no tensor '" + name + "'");
    }
    Tensor shared = buffers.computeIfAbsent(Arrays.stream(shape).boxed().toList(), key -> fill(shape));
    return new Tensor(name, DType.F16, shape, shared.data());
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IllegalArgumentException("synthetic tensor '%s' is %s, asked for %s"
          .formatted(name, Arrays.toString(t.shape()), Arrays.toString(shape)));
    }
    return t;
  }

  /** A vector is a norm weight (ones), a matrix the random block repeated. */
  private Tensor fill(long[] shape) {
    long count = Tensor.numElements(shape);
    MemorySegment data = arena.allocate(2 * count, 2);
    if (shape.length == 1) {
      for (long i = 0; i < count; i++) {
        data.setAtIndex(F16_LE, i, F16_ONE);
      }
    } else {
      MemorySegment source = MemorySegment.ofArray(block);
      for (long start = 0; start < count; start += BLOCK) {
        long n = Math.min(BLOCK, count - start);
        MemorySegment.copy(source, 0, data, 2 * start, 2 * n);
      }
    }
    return new Tensor("shared " + Arrays.toString(shape), DType.F16, shape, data);
  }

  @Override
  public void close() {
    buffers.clear();
    arena.close();
  }
}
