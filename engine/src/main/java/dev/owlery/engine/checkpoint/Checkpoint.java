package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.function.ToIntFunction;

/**
 * The tensors of one model directory, by state-dict name, backed by read-only file mappings that
 * live until {@link #close()}. Implementations validate every tensor's bytes on open.
 */
public interface Checkpoint extends AutoCloseable {

  /** The model directory (or file) this checkpoint was opened from, for error messages. */
  Path location();

  /** All tensor names. */
  Set<String> names();

  boolean contains(String name);

  /**
   * The tensor called {@code name}.
   *
   * @throws IllegalArgumentException naming the tensor and the checkpoint when it is missing
   */
  Tensor tensor(String name);

  /**
   * The tensor called {@code name}, checked to have exactly {@code shape}.
   *
   * @throws IllegalArgumentException naming the file, the tensor and both shapes on a mismatch
   */
  Tensor tensor(String name, long... shape);

  /**
   * A weight matrix the layers multiply by (a tensor's view, or this rank's slice of one) in the
   * form this checkpoint serves weights: by default the view itself, read in place from the file.
   */
  default Matrix weight(Matrix view) {
    return view;
  }

  /**
   * {@link #weight} of {@code view} in column blocks, in column order, that together hold its
   * columns: each block its own matrix of at most about {@code maxColumns.applyAsInt(dtype)}
   * columns, for the dtype the blocks are stored in (block edges at multiples of 64), where this
   * checkpoint copies its weights; the whole {@code weight(view)} where it serves them in place (a
   * block of a mapped file would be a strided view, which reads slower than whole rows).
   */
  default List<Matrix> weightColumnBlocks(Matrix view, ToIntFunction<DType> maxColumns) {
    return List.of(weight(view));
  }

  /**
   * This checkpoint serving its weight matrices ({@link #weight}) in {@code format}: each copied or
   * converted once when a layer loads it, into memory the returned checkpoint owns; closing it frees
   * that memory and closes this checkpoint. {@link WeightFormat#MAPPED} returns this checkpoint.
   */
  default Checkpoint withWeightFormat(WeightFormat format) {
    return format == WeightFormat.MAPPED ? this : new ConvertedWeightsCheckpoint(this, format);
  }

  /** Unmaps the files; tensors obtained earlier must not be used afterwards. */
  @Override
  void close();
}
