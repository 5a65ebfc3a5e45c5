package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import java.util.List;

/**
 * One step of a device slice, as the coordinator schedules it: sequences in batch order, each with
 * its block table (the pool blocks holding its positions, in order) and its rows at consecutive
 * positions from {@code firstPosition} (one row for decode, a chunk for prefill); their input rows
 * are consecutive rows of {@code inputsEmbeds} ({@code hiddenSize} floats each) with
 * {@code modalities} from row 0, in batch order.
 */
public record SliceStep(List<Sequence> sequences, float[] inputsEmbeds, Modality[] modalities) {

  public SliceStep {
    sequences = List.copyOf(sequences);
    if (sequences.isEmpty()) {
      throw new IllegalArgumentException("a step needs at least one sequence");
    }
    int numTokens = sequences.stream().mapToInt(Sequence::numRows).sum();
    if (modalities.length < numTokens) {
      throw new IllegalArgumentException("a step of %d rows needs a modality per row, given %d"
          .formatted(numTokens, modalities.length));
    }
  }

  /**
   * One sequence's rows in a step.
   *
   * @param blockTable pool block ids of positions {@code [i * blockSize, (i + 1) * blockSize)}, i = 0, 1, ...
   * @param firstPosition position of the sequence's first row in this step (the positions before it are cached)
   * @param logitRows whose logits the step returns: every row's or the last row's
   */
  public record Sequence(int[] blockTable, int firstPosition, int numRows, LogitRows logitRows) {

    public Sequence {
      blockTable = blockTable.clone();
      if (numRows < 1 || firstPosition < 0) {
        throw new IllegalArgumentException("a sequence's step needs at least one row at a position >= 0. Given: "
            + "%d rows from position %d".formatted(numRows, firstPosition));
      }
    }

    int numLogitRows() {
      return switch (logitRows) {
        case ALL -> numRows;
        case LAST -> 1;
      };
    }
  }

  /** Rows in this step, every sequence's together. */
  public int numTokens() {
    return sequences.stream().mapToInt(Sequence::numRows).sum();
  }

  /** Rows of logits the step returns, in batch order. */
  public int numLogitRows() {
    return sequences.stream().mapToInt(Sequence::numLogitRows).sum();
  }
}
