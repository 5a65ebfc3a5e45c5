package dev.owlery.engine.vision;

import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scratch for one attention head at a time, done as two {@link Kernels#matmul} calls as PyTorch
 * does ({@code scores = Q_h K_hᵀ}, then {@code context_h = P V_h}) so a fast kernel does the
 * quadratic work. The caller scales the scores and applies the softmax in between, each model with
 * its own rule (spec §9).
 *
 * <p>Not thread-safe: one instance per forward call.
 */
final class HeadAttention {

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** One head's columns {@code [column, column + headDim)} of a row-major activation with {@code rowStride} floats per row. */
  record HeadColumns(float[] data, int rowStride, int column) {}

  private final Kernels kernels;
  private final int headDim;
  private final int numQueries;
  private final int numKeys;
  private final float[] queries; // [numQueries, headDim]
  private final MemorySegment keys; // [numKeys, headDim], a matmul weight
  private final Matrix keyMatrix;
  private final MemorySegment valuesTransposed; // [headDim, numKeys], a matmul weight
  private final Matrix valueMatrix;
  private final float[] scores; // [numQueries, numKeys]
  private final float[] context; // [numQueries, headDim]

  HeadAttention(Kernels kernels, int headDim, int numQueries, int numKeys) {
    this.kernels = kernels;
    this.headDim = headDim;
    this.numQueries = numQueries;
    this.numKeys = numKeys;
    this.queries = new float[numQueries * headDim];
    // shared (auto) arena: a multi-threaded kernel may read these from its own threads
    Arena arena = Arena.ofAuto();
    this.keys = arena.allocate((long) numKeys * headDim * Float.BYTES);
    this.keyMatrix = new Matrix("attention keys", keys, DType.F32, numKeys, headDim, headDim, 0);
    this.valuesTransposed = arena.allocate((long) headDim * numKeys * Float.BYTES);
    this.valueMatrix = new Matrix("attention values", valuesTransposed, DType.F32, headDim, numKeys, numKeys, 0);
    this.scores = new float[numQueries * numKeys];
    this.context = new float[numQueries * headDim];
  }

  /** Raw scores {@code [numQueries, numKeys]}: row i holds query i's dot products with every key. */
  float[] scores(HeadColumns q, HeadColumns k) {
    for (int i = 0; i < numQueries; i++) {
      System.arraycopy(q.data(), i * q.rowStride() + q.column(), queries, i * headDim, headDim);
    }
    for (int j = 0; j < numKeys; j++) {
      int from = j * k.rowStride() + k.column();
      for (int d = 0; d < headDim; d++) {
        keys.setAtIndex(F32_LE, (long) j * headDim + d, k.data()[from + d]);
      }
    }
    kernels.matmul(keyMatrix, queries, 0, scores, 0, numQueries);
    return scores;
  }

  /** Writes {@code P V_h} into the head's columns of {@code out}, P being the (now normalised) scores. */
  void weightedValues(HeadColumns v, HeadColumns out) {
    for (int j = 0; j < numKeys; j++) {
      int from = j * v.rowStride() + v.column();
      for (int d = 0; d < headDim; d++) {
        valuesTransposed.setAtIndex(F32_LE, (long) d * numKeys + j, v.data()[from + d]);
      }
    }
    kernels.matmul(valueMatrix, scores, 0, context, 0, numQueries);
    for (int i = 0; i < numQueries; i++) {
      System.arraycopy(context, i * headDim, out.data(), i * out.rowStride() + out.column(), headDim);
    }
  }
}
