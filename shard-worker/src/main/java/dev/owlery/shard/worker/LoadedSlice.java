package dev.owlery.shard.worker;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.StepTimings;
import dev.owlery.shard.collective.GrpcCollective;
import dev.owlery.shard.collective.StepTraffic;
import java.util.ArrayList;
import java.util.List;

/**
 * One loaded slice and its state: the decoder slice (on the CPU or a device, {@link SliceForward}),
 * the group's collective, the sequences holding the KV pool's blocks, and the step buffers,
 * allocated once. A step runs all its sequences through one batched forward (one pair of
 * all-reduces per layer for the whole batch). Used by the shard's step thread only, but {@link
 * #heldSequences()}' block counts; {@link SliceLoader} builds it.
 *
 * @param <S> the forward's record of a sequence's blocks
 */
final class LoadedSlice<S extends SequenceBlocks> implements AutoCloseable {

  private final LoadSliceRequest request;
  private final LoadSliceResponse response;
  private final Checkpoint checkpoint;
  private final LlamaConfig config;
  private final SliceForward<S> slice;
  private final GrpcCollective collective;
  private final StepPlan.Limits limits;
  private final HeldSequences<S> held;
  private final List<SliceForward.Rows<S>> batch;
  /** The step's input rows, all sequences in request order, [max_num_tokens, hidden]. */
  private final float[] inputs;
  private final Modality[] modalities;
  /** The step's logits, [rows, local vocabulary]; grows to the largest step once. */
  private float[] logits = new float[0];
  private final StepLogits stepLogits;
  private long lastStepId = -1;

  LoadedSlice(LoadSliceRequest request, LoadSliceResponse response, Checkpoint checkpoint, LlamaConfig config,
      SliceForward<S> slice, GrpcCollective collective, StepPlan.Limits limits) {
    this.request = request;
    this.response = response;
    this.checkpoint = checkpoint;
    this.config = config;
    this.slice = slice;
    this.collective = collective;
    this.limits = limits;
    this.held = new HeldSequences<>(slice.numKvBlocks(), slice::newSequence);
    this.batch = new ArrayList<>(limits.maxNumSequences());
    this.inputs = new float[Math.multiplyExact(limits.maxNumTokens(), config.hiddenSize())];
    this.modalities = new Modality[limits.maxNumTokens()];
    this.stepLogits = new StepLogits(slice.vocabStart(), slice.localVocabSize());
  }

  LoadSliceRequest request() {
    return request;
  }

  LoadSliceResponse response() {
    return response;
  }

  GrpcCollective collective() {
    return collective;
  }

  /** The sequences holding KV blocks here; its block counts may be read from any thread. */
  HeldSequences<S> heldSequences() {
    return held;
  }

  /**
   * Runs one step; {@code receivedNanos} is when the request arrived and {@code giveUpAt} when its
   * all-reduces stop waiting for peers at the latest (System.nanoTime both). The step's
   * releases are applied first, even when the step is then refused: releasing is idempotent and
   * every rank receives the same request, so all ranks stay alike, and the step may reuse the
   * released blocks and restart a released id at position 0.
   */
  RunStepResponse runStep(RunStepRequest step, long receivedNanos, long giveUpAt) {
    requireGroup(step.getGroupId(), step.getWorldSize());
    requireNewStepId(step.getStepId());
    held.release(step.getReleasedSequenceIdsList());
    StepPlan plan = StepPlan.of(step, held, limits);
    StepLogits.check(step);
    lastStepId = step.getStepId();
    held.takeBlocks(plan);
    int localVocab = slice.localVocabSize();
    if (logits.length < plan.numLogitRows() * localVocab) {
      logits = new float[Math.multiplyExact(plan.numLogitRows(), localVocab)];
    }
    collective.beginStep(step.getStepId(), giveUpAt);
    long start = System.nanoTime();
    batch.clear();
    int row = 0;
    for (StepPlan.SequenceRows rows : plan.sequences()) {
      StepSequence sequence = rows.sequence();
      embed(rows, row);
      batch.add(new SliceForward.Rows<>(held.get(sequence.getSequenceId()), rows.numRows(),
          sequence.getAllLogits() ? LogitRows.ALL : LogitRows.LAST));
      row += rows.numRows();
    }
    long embedded = System.nanoTime();
    slice.forward(batch, inputs, modalities, logits);
    long done = System.nanoTime();
    StepTraffic traffic = collective.endStep();
    RunStepResponse.Builder response = RunStepResponse.newBuilder().setStepId(step.getStepId())
        .setVocabStart(slice.vocabStart()).setVocabEnd(slice.vocabStart() + localVocab);
    stepLogits.write(plan, logits, response);
    StepTimings timings = StepTimings.newBuilder().setNumTokens(plan.numTokens()).setEmbedNs(embedded - start)
        .setLayersNs(done - embedded - slice.lastLmHeadNanos()).setAllReduceNs(traffic.allReduceNanos())
        .setLmHeadNs(slice.lastLmHeadNanos()).setTotalNs(System.nanoTime() - receivedNanos).build();
    return response.setTimings(timings).build();
  }

  /**
   * Embeds TEXT rows here (shards hold embed_tokens) and copies IMAGE rows from the request, in
   * order, into the step's rows from {@code firstRow}.
   */
  private void embed(StepPlan.SequenceRows rows, int firstRow) {
    StepSequence sequence = rows.sequence();
    int hidden = config.hiddenSize();
    int imageRow = 0;
    for (int k = 0; k < rows.numRows(); k++) {
      int row = firstRow + k;
      if (sequence.getModalities(k) == dev.owlery.proto.internal.v1.Modality.MODALITY_IMAGE) {
        rows.images().get(imageRow * hidden, inputs, row * hidden, hidden);
        imageRow++;
        modalities[row] = Modality.VISUAL;
      } else {
        slice.embed(sequence.getTokenIds(k), inputs, row * hidden);
        modalities[row] = Modality.TEXT;
      }
    }
  }

  /** Runs the one-value all-reduce of (rank + 1) across the group, waiting for peers until {@code giveUpAt}. */
  RunHealthStepResponse runHealthStep(RunHealthStepRequest step, long giveUpAt) {
    requireGroup(step.getGroupId(), step.getWorldSize());
    claimStepId(step.getStepId());
    collective.beginStep(step.getStepId(), giveUpAt);
    float sum = collective.allReduceHealth(collective.rank() + 1);
    StepTraffic traffic = collective.endStep();
    return RunHealthStepResponse.newBuilder().setGroupId(request.getGroupId()).setRank(request.getRank())
        .setWorldSize(request.getWorldSize()).setReducedValue(sum).setAllReduceNs(traffic.allReduceNanos()).build();
  }

  /** Forgets every sequence and frees their blocks: the group broke, or it is formed anew. */
  void releaseAll() {
    held.clear();
  }

  /** Forgets the sequences {@code ids} and frees their blocks; returns how many were held. */
  int release(List<Long> ids) {
    return held.release(ids);
  }

  private void requireGroup(String groupId, int worldSize) {
    if (!groupId.equals(request.getGroupId()) || worldSize != request.getWorldSize()) {
      throw new IllegalStateException("this shard holds rank %d of group '%s' (world size %d). Given: group '%s', world size %d"
          .formatted(request.getRank(), request.getGroupId(), request.getWorldSize(), groupId, worldSize));
    }
    collective.requireHealthy();
  }

  private void requireNewStepId(long stepId) {
    if (stepId <= lastStepId) {
      throw new IllegalArgumentException("step_id must be greater than the last step run on this rank (%d). Given: %d"
          .formatted(lastStepId, stepId));
    }
  }

  private void claimStepId(long stepId) {
    requireNewStepId(stepId);
    lastStepId = stepId;
  }

  /** Leaves the group (peers' steps fail), frees the slice's device memory if any, and unmaps the weights. */
  @Override
  public void close() {
    collective.close();
    held.clear();
    try {
      slice.close();
    } finally {
      checkpoint.close();
    }
  }
}
