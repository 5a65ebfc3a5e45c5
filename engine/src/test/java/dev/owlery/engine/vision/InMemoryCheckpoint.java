package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.CheckpointException;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/** A test checkpoint holding tensors by name: built in memory or as a filtered view of another checkpoint. */
final class InMemoryCheckpoint implements Checkpoint {

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path location;
  private final Map<String, Tensor> tensors = new LinkedHashMap<>();

  InMemoryCheckpoint(Path location) {
    this.location = location;
  }

  /** The tensors of {@code source} whose names pass {@code keep}, viewed in place (source must stay open). */
  static InMemoryCheckpoint filtered(Checkpoint source, Predicate<String> keep) {
    InMemoryCheckpoint copy = new InMemoryCheckpoint(source.location());
    for (String name : source.names()) {
      if (keep.test(name)) {
        copy.tensors.put(name, source.tensor(name));
      }
    }
    return copy;
  }

  /** Adds a float tensor of {@code dtype} (F32, F16 or BF16) holding {@code values}. */
  InMemoryCheckpoint put(String name, DType dtype, float[] values, long... shape) {
    MemorySegment data = Arena.ofAuto().allocate((long) values.length * dtype.byteSize());
    for (int i = 0; i < values.length; i++) {
      switch (dtype) {
        case F32 -> data.setAtIndex(F32_LE, i, values[i]);
        case F16 -> data.setAtIndex(I16_LE, i, Float.floatToFloat16(values[i]));
        case BF16 -> data.setAtIndex(I16_LE, i, (short) (Float.floatToRawIntBits(values[i]) >>> 16));
        case I64, I32, U8 -> throw new IllegalArgumentException("not a float dtype: " + dtype);
      }
    }
    tensors.put(name, new Tensor(name, dtype, shape, data));
    return this;
  }

  @Override
  public Path location() {
    return location;
  }

  @Override
  public Set<String> names() {
    return tensors.keySet();
  }

  @Override
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  @Override
  public Tensor tensor(String name) {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new CheckpointException(location, name, "the model needs this tensor but the checkpoint has none of that name");
    }
    return t;
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new CheckpointException(location, name,
          "shape %s does not match the config, which needs %s".formatted(Arrays.toString(t.shape()), Arrays.toString(shape)));
    }
    return t;
  }

  @Override
  public void close() {}
}
