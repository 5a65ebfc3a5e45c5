package dev.owlery.shard.worker;

import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import io.grpc.Status;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A RunStep request checked completely before any row runs: every rank receives the same request
 * and holds the same sequences, so every rank accepts or refuses it alike and no rank is left
 * waiting in an all-reduce for a rank that refused. Bad input fails with IllegalArgumentException
 * (INVALID_ARGUMENT) naming the field and values; a step past the capacity given at LoadSlice fails
 * with RESOURCE_EXHAUSTED. Block tables are checked against the blocks held after the step's
 * releases: each must cover the step's last position, keep its earlier entries, and take no block
 * another sequence holds or takes in the same step.
 *
 * @param sequences the sequences in request order
 * @param numTokens rows of all sequences together
 * @param numLogitRows rows of logits the response carries
 */
record StepPlan(List<SequenceRows> sequences, int numTokens, int numLogitRows) {

  /**
   * One sequence of the step.
   *
   * @param cache its blocks and cached positions; null for a sequence new to this rank (created when the step is accepted)
   * @param numRows its rows in this step
   * @param images its IMAGE rows' inputs, [image rows, hidden] little-endian; null when none
   */
  record SequenceRows(StepSequence sequence, SequenceBlocks cache, int numRows, FloatBuffer images) {}

  /**
   * The limits a step is checked against, fixed at LoadSlice.
   *
   * @param maxPositions positions a sequence may reach (max_position_embeddings)
   */
  record Limits(int vocabSize, int hiddenSize, int maxPositions, int maxNumTokens, int maxNumSequences, int numKvBlocks,
      int blockSizeTokens) {}

  /** Checks {@code request} against {@code limits} and the sequences and blocks this rank holds. */
  static StepPlan of(RunStepRequest request, HeldSequences<?> held, Limits limits) {
    int count = request.getSequencesCount();
    if (count < 1) {
      throw new IllegalArgumentException("sequences must hold at least one sequence. Given: 0");
    }
    if (count > limits.maxNumSequences()) {
      throw exhausted("a step may carry at most max_num_sequences (%d) sequences. Given: %d"
          .formatted(limits.maxNumSequences(), count));
    }
    List<SequenceRows> rows = new ArrayList<>(count);
    Set<Long> ids = new HashSet<>();
    Map<Integer, Long> newBlocks = new HashMap<>(); // blocks this step gives out, to the sequence taking each
    int numTokens = 0;
    int numLogitRows = 0;
    int numNew = 0;
    for (int i = 0; i < count; i++) {
      StepSequence sequence = request.getSequences(i);
      if (!ids.add(sequence.getSequenceId())) {
        throw new IllegalArgumentException("sequences[%d]: sequence %d appears more than once in the step"
            .formatted(i, sequence.getSequenceId()));
      }
      SequenceBlocks cache = held.get(sequence.getSequenceId());
      SequenceRows checked = check(i, sequence, cache, limits);
      checkBlocks(where(i, sequence), checked, held, newBlocks);
      rows.add(checked);
      numNew += cache == null ? 1 : 0;
      numTokens += checked.numRows();
      numLogitRows += sequence.getAllLogits() ? checked.numRows() : 1;
    }
    if (numTokens > limits.maxNumTokens()) {
      throw exhausted("a step may carry at most max_num_tokens (%d) rows. Given: %d"
          .formatted(limits.maxNumTokens(), numTokens));
    }
    if (held.size() + numNew > limits.maxNumSequences()) {
      throw exhausted("this rank holds %d sequences and the step starts %d more; max_num_sequences is %d"
          .formatted(held.size(), numNew, limits.maxNumSequences()));
    }
    return new StepPlan(List.copyOf(rows), numTokens, numLogitRows);
  }

  private static String where(int i, StepSequence s) {
    return "sequences[%d] (sequence %d)".formatted(i, s.getSequenceId());
  }

  private static SequenceRows check(int i, StepSequence s, SequenceBlocks cache, Limits limits) {
    String where = where(i, s);
    int n = s.getTokenIdsCount();
    if (n < 1) {
      throw new IllegalArgumentException(where + ": token_ids must hold at least one row. Given: 0");
    }
    if (s.getPositionsCount() != n || s.getModalitiesCount() != n) {
      throw new IllegalArgumentException("%s: token_ids, positions and modalities must have one entry per row. Given: %d, %d, %d"
          .formatted(where, n, s.getPositionsCount(), s.getModalitiesCount()));
    }
    int first = cache == null ? 0 : cache.length();
    if (cache == null && s.getPositions(0) != 0) {
      throw new IllegalArgumentException(("%s is unknown on this rank (never run here, or released); its first step "
          + "must start at position 0. Given: positions[0] = %d").formatted(where, s.getPositions(0)));
    }
    int numImageRows = 0;
    for (int k = 0; k < n; k++) {
      if (s.getPositions(k) != first + k) {
        throw new IllegalArgumentException("%s: positions must continue its KV cache from %d, one per row. Given: positions[%d] = %d"
            .formatted(where, first, k, s.getPositions(k)));
      }
      Modality modality = s.getModalities(k);
      if (modality == Modality.MODALITY_IMAGE) {
        numImageRows++;
      } else if (modality != Modality.MODALITY_TEXT) {
        throw new IllegalArgumentException("%s: modalities[%d] must be MODALITY_TEXT or MODALITY_IMAGE. Given: %s"
            .formatted(where, k, modality));
      } else if (s.getTokenIds(k) < 0 || s.getTokenIds(k) >= limits.vocabSize()) {
        throw new IllegalArgumentException("%s: token_ids[%d] must be in [0, %d). Given: %d"
            .formatted(where, k, limits.vocabSize(), s.getTokenIds(k)));
      }
    }
    int last = first + n - 1;
    if (last >= limits.maxPositions()) {
      throw new IllegalArgumentException("%s: position %d is past max_position_embeddings (%d)"
          .formatted(where, last, limits.maxPositions()));
    }
    checkTableShape(where, s, last, limits);
    return new SequenceRows(s, cache, n, images(where, s.getImageEmbeddings(), numImageRows, limits.hiddenSize()));
  }

  /** The table's size covers {@code lastPosition}; every id is in the pool. */
  private static void checkTableShape(String where, StepSequence s, int lastPosition, Limits limits) {
    if (s.getBlockIdsCount() == 0) {
      throw new IllegalArgumentException(where + ": block_ids must hold the sequence's block table. Given: none");
    }
    if ((long) s.getBlockIdsCount() * limits.blockSizeTokens() <= lastPosition) {
      throw new IllegalArgumentException("%s: block_ids (%d blocks of %d positions) must cover position %d"
          .formatted(where, s.getBlockIdsCount(), limits.blockSizeTokens(), lastPosition));
    }
    for (int b = 0; b < s.getBlockIdsCount(); b++) {
      int id = s.getBlockIds(b);
      if (id < 0 || id >= limits.numKvBlocks()) {
        throw new IllegalArgumentException("%s: block_ids[%d] must be in [0, %d). Given: %d"
            .formatted(where, b, limits.numKvBlocks(), id));
      }
    }
  }

  /**
   * The table keeps the blocks of earlier steps at their indexes, and each entry past them is a
   * block nobody holds and no other entry of this step takes; records those in {@code newBlocks}.
   */
  private static void checkBlocks(String where, SequenceRows rows, HeldSequences<?> held, Map<Integer, Long> newBlocks) {
    StepSequence s = rows.sequence();
    long id = s.getSequenceId();
    int kept = rows.cache() == null ? 0 : rows.cache().numBlocks();
    if (s.getBlockIdsCount() < kept) {
      throw new IllegalArgumentException("%s: block_ids must keep the %d blocks of its earlier steps (the table only grows). Given: %d blocks"
          .formatted(where, kept, s.getBlockIdsCount()));
    }
    for (int b = 0; b < kept; b++) {
      if (s.getBlockIds(b) != rows.cache().blockId(b)) {
        throw new IllegalArgumentException("%s: block_ids[%d] must stay %d (the table only grows). Given: %d"
            .formatted(where, b, rows.cache().blockId(b), s.getBlockIds(b)));
      }
    }
    for (int b = kept; b < s.getBlockIdsCount(); b++) {
      int block = s.getBlockIds(b);
      if (held.isHeld(block)) {
        throw blockConflict(where, b, block, held.owner(block), id, "held by");
      }
      Long taker = newBlocks.putIfAbsent(block, id);
      if (taker != null) {
        throw blockConflict(where, b, block, taker, id, "given in this step to");
      }
    }
  }

  private static IllegalArgumentException blockConflict(String where, int index, int block, long holder, long id,
      String how) {
    String whose = holder == id ? "this sequence at another index" : "sequence " + holder;
    return new IllegalArgumentException("%s: block_ids[%d] = %d is already %s %s; a block belongs to one sequence"
        .formatted(where, index, block, how, whose));
  }

  private static FloatBuffer images(String where, Tensor tensor, int numImageRows, int hiddenSize) {
    if (numImageRows == 0) {
      if (tensor.getShapeCount() != 0 || !tensor.getData().isEmpty()) {
        throw new IllegalArgumentException("%s: image_embeddings must be absent when no row is MODALITY_IMAGE. Given shape %s"
            .formatted(where, tensor.getShapeList()));
      }
      return null;
    }
    if (tensor.getDtype() != DType.DTYPE_F32 || tensor.getShapeCount() != 2 || tensor.getShape(0) != numImageRows
        || tensor.getShape(1) != hiddenSize) {
      throw new IllegalArgumentException("%s: image_embeddings must be F32 [%d, %d] (one row per MODALITY_IMAGE row). Given: %s %s"
          .formatted(where, numImageRows, hiddenSize, tensor.getDtype(), tensor.getShapeList()));
    }
    long expectedBytes = 4L * numImageRows * hiddenSize;
    if (tensor.getData().size() != expectedBytes) {
      // tensor.proto: a data length that does not match the shape is FAILED_PRECONDITION
      throw new IllegalStateException("%s: image_embeddings data holds %d bytes; shape [%d, %d] of F32 needs %d"
          .formatted(where, tensor.getData().size(), numImageRows, hiddenSize, expectedBytes));
    }
    return tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  private static RuntimeException exhausted(String message) {
    return Status.RESOURCE_EXHAUSTED.withDescription(message).asRuntimeException();
  }
}
