package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Where an F16 matrix has halves with a zero exponent field (zeros and subnormals) inside the
 * vector body of {@link MatvecKernels#dotF16}, and what each one's lifted float lacks
 * ({@link VectorMatmul#f16LiftError}): the dot product reads every weight lifted to a normal
 * float, with no per-lane test, and adds {@code sum error * x} over this list afterwards. Positions
 * are in the pair order of the activations ({@link VectorMatmul#permuteForPairs} with the matrix's
 * head), so the correction reads the same array as the dot product. Trained weights with a
 * standard deviation of 0.02 have about one such half in 400 (a few per row); a matrix of zeros
 * lists every weight and stays correct, only slower.
 *
 * <p>The list is built in blocks of {@value #BLOCK_ROWS} rows, each by the first thread whose dot
 * products need it, just before them: its rows are then read from memory once for both, the
 * threads build their own rows' blocks, and the first decode step does not wait for a scan of the
 * whole model. A block is immutable and reached through final fields, so a thread that finds
 * another's block sees it whole; two threads building the same block build equal ones.
 */
final class ZeroExponentHalves {

  static final int BLOCK_ROWS = 16;
  private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final int L = VectorMatmul.F.length();

  private final int head;
  /** Columns {@code [head, head + body)} go through the vector loops. */
  private final int body;
  private final Block[] blocks;

  /**
   * The (not yet built) list of F16 matrix {@code w}, whose dot products start their vector body at
   * column {@code head}. It keeps no reference to {@code w} (a cache keyed weakly on the matrix holds
   * it), so {@link #correction} is handed the matrix again.
   */
  ZeroExponentHalves(Matrix w, int head) {
    if (w.dtype() != DType.F16) {
      throw new IllegalArgumentException("matrix '%s' is %s, not F16".formatted(w.name(), w.dtype()));
    }
    this.head = head;
    this.body = (w.cols() - head) / (2 * L) * (2 * L);
    this.blocks = new Block[Math.ceilDiv(w.rows(), BLOCK_ROWS)];
  }

  /** What row {@code r}'s dot product of {@code w} (this list's matrix) with pair-ordered {@code x} lacks. */
  float correction(Matrix w, int r, float[] x, int xOffset) {
    Block block = blocks[r / BLOCK_ROWS];
    if (block == null) {
      block = build(w, r / BLOCK_ROWS);
      blocks[r / BLOCK_ROWS] = block;
    }
    return block.correction(r % BLOCK_ROWS, x, xOffset);
  }

  private Block build(Matrix w, int index) {
    MemorySegment data = w.data();
    int first = index * BLOCK_ROWS;
    int rows = Math.min(BLOCK_ROWS, w.rows() - first);
    int[] rowStarts = new int[rows + 1];
    Entries entries = new Entries();
    for (int i = 0; i < rows; i++) {
      rowStarts[i] = entries.count;
      long rowByte = w.rowByteOffset(first + i);
      int c = head;
      for (; c + S.length() <= head + body; c += S.length()) {
        long zero = ShortVector.fromMemorySegment(S, data, rowByte + 2L * c, ByteOrder.LITTLE_ENDIAN)
            .and((short) 0x7c00)
            .compare(VectorOperators.EQ, (short) 0)
            .toLong();
        for (; zero != 0; zero &= zero - 1) {
          entries.addIfZeroExponent(data, rowByte, c + Long.numberOfTrailingZeros(zero));
        }
      }
      for (; c < head + body; c++) {
        entries.addIfZeroExponent(data, rowByte, c);
      }
    }
    rowStarts[rows] = entries.count;
    return new Block(rowStarts, Arrays.copyOf(entries.positions, entries.count),
        Arrays.copyOf(entries.errors, entries.count));
  }

  /** A block's entries as they are found. */
  private final class Entries {
    int[] positions = new int[16];
    float[] errors = new float[16];
    int count;

    void addIfZeroExponent(MemorySegment data, long rowByte, int column) {
      short bits = data.get(I16_LE, rowByte + 2L * column);
      if ((bits & 0x7c00) != 0) {
        return;
      }
      if (count == positions.length) {
        positions = Arrays.copyOf(positions, 2 * count);
        errors = Arrays.copyOf(errors, 2 * count);
      }
      positions[count] = VectorMatmul.pairPosition(column, head, head + body);
      errors[count++] = VectorMatmul.f16LiftError(bits);
    }
  }

  /** The entries of row i of the block: {@code [rowStarts[i], rowStarts[i + 1])}. */
  private record Block(int[] rowStarts, int[] positions, float[] errors) {
    float correction(int i, float[] x, int xOffset) {
      float sum = 0f;
      for (int e = rowStarts[i]; e < rowStarts[i + 1]; e++) {
        sum += errors[e] * x[xOffset + positions[e]];
      }
      return sum;
    }
  }
}
