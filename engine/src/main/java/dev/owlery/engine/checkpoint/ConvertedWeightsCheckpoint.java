package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.ToIntFunction;

/**
 * A checkpoint whose weight matrices are converted to one {@link WeightFormat} as the layers load
 * them; the converted copies live in an arena freed on {@link #close()}. Tensors are the
 * underlying checkpoint's, read in place.
 */
final class ConvertedWeightsCheckpoint implements Checkpoint {

  private final Checkpoint stored;
  private final WeightFormat format;
  private final Arena arena = Arena.ofShared();

  ConvertedWeightsCheckpoint(Checkpoint stored, WeightFormat format) {
    this.stored = stored;
    this.format = format;
  }

  @Override
  public Matrix weight(Matrix view) {
    return format.convert(view, arena);
  }

  @Override
  public List<Matrix> weightColumnBlocks(Matrix view, ToIntFunction<DType> maxColumns) {
    int cols = view.cols();
    DType stored = format.storedDType(view);
    // every block in the whole view's dtype: a view the format leaves as stored (columns not whole
    // Q8_0 blocks) is not quantized in the blocks whose own columns would be
    WeightFormat blockFormat = stored == view.dtype() ? WeightFormat.STORED : format;
    int blocks = Math.max(1, Math.ceilDiv(cols, maxColumns.applyAsInt(stored)));
    List<Matrix> copies = new ArrayList<>(blocks);
    int from = 0;
    for (int b = 1; b <= blocks; b++) {
      int to = b == blocks ? cols : (int) ((long) cols * b / blocks) / 64 * 64;
      if (to > from) {
        copies.add(blockFormat.convert(view.colSlice(from, to), arena));
        from = to;
      }
    }
    return copies;
  }

  @Override
  public Path location() {
    return stored.location();
  }

  @Override
  public Set<String> names() {
    return stored.names();
  }

  @Override
  public boolean contains(String name) {
    return stored.contains(name);
  }

  @Override
  public Tensor tensor(String name) {
    return stored.tensor(name);
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    return stored.tensor(name, shape);
  }

  @Override
  public void close() {
    try {
      stored.close();
    } finally {
      arena.close();
    }
  }
}
