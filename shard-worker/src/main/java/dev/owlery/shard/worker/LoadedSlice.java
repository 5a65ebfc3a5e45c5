package dev.owlery.shard.worker;

import com.google.protobuf.UnsafeByteOperations;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.StepTimings;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.shard.collective.GrpcCollective;
import dev.owlery.shard.collective.StepTraffic;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One loaded slice and its state: the decoder slice, the group's collective, the KV cache of every
 * sequence (contiguous, one per sequence, created on its first step) and the step buffers,
 * allocated once. Used by the shard's step thread only; {@link SliceLoader} builds it.
 */
final class LoadedSlice implements AutoCloseable {

  private final LoadSliceRequest request;
  private final LoadSliceResponse response;
  private final Checkpoint checkpoint;
  private final LlamaConfig config;
  private final DecoderSlice slice;
  private final GrpcCollective collective;
  private final StepPlan.Limits limits;
  private final Map<Long, KvCache> sequences = new HashMap<>();
  /** One sequence's input rows, [max_num_tokens, hidden]. */
  private final float[] inputs;
  private final Modality[] modalities;
  /** The step's logits, [rows, local vocabulary]; grows to the largest step once. */
  private float[] logits = new float[0];
  private byte[] logitBytes = new byte[0];
  private FloatBuffer logitFloats = FloatBuffer.allocate(0);
  private long lastStepId = -1;

  LoadedSlice(LoadSliceRequest request, LoadSliceResponse response, Checkpoint checkpoint, LlamaConfig config,
      DecoderSlice slice, GrpcCollective collective, StepPlan.Limits limits) {
    this.request = request;
    this.response = response;
    this.checkpoint = checkpoint;
    this.config = config;
    this.slice = slice;
    this.collective = collective;
    this.limits = limits;
    this.inputs = new float[Math.multiplyExact(limits.maxNumTokens(), config.hiddenSize())];
    this.modalities = new Modality[limits.maxNumTokens()];
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

  /** Sequences holding a KV cache here. */
  int numSequences() {
    return sequences.size();
  }

  /** Runs one step; {@code receivedNanos} is when the request arrived (System.nanoTime). */
  RunStepResponse runStep(RunStepRequest step, long receivedNanos) {
    requireGroup(step.getGroupId(), step.getWorldSize());
    StepPlan plan = StepPlan.of(step, sequences, limits);
    claimStepId(step.getStepId());
    int localVocab = slice.localVocabSize();
    if (logits.length < plan.numLogitRows() * localVocab) {
      logits = new float[Math.multiplyExact(plan.numLogitRows(), localVocab)];
    }
    long embedNanos = 0;
    long layersNanos = 0;
    long lmHeadNanos = 0;
    int outRow = 0;
    collective.beginStep(step.getStepId());
    for (StepPlan.SequenceRows rows : plan.sequences()) {
      StepSequence sequence = rows.sequence();
      KvCache cache = rows.cache();
      if (cache == null) {
        cache = slice.newKvCache(limits.kvCapacity());
        sequences.put(sequence.getSequenceId(), cache);
      }
      long start = System.nanoTime();
      embed(rows);
      long embedded = System.nanoTime();
      LogitRows wanted = sequence.getAllLogits() ? LogitRows.ALL : LogitRows.LAST;
      slice.forward(inputs, 0, modalities, rows.numRows(), cache, wanted, logits, localVocab, outRow * localVocab);
      long done = System.nanoTime();
      embedNanos += embedded - start;
      lmHeadNanos += slice.lastLmHeadNanos();
      layersNanos += done - embedded - slice.lastLmHeadNanos();
      outRow += wanted == LogitRows.ALL ? rows.numRows() : 1;
    }
    StepTraffic traffic = collective.endStep();
    StepTimings timings = StepTimings.newBuilder().setNumTokens(plan.numTokens()).setEmbedNs(embedNanos)
        .setLayersNs(layersNanos).setAllReduceNs(traffic.allReduceNanos()).setLmHeadNs(lmHeadNanos)
        .setTotalNs(System.nanoTime() - receivedNanos).build();
    return RunStepResponse.newBuilder().setStepId(step.getStepId())
        .setLogits(logitTensor(plan.numLogitRows(), localVocab)).setVocabStart(slice.vocabStart())
        .setVocabEnd(slice.vocabStart() + localVocab).setTimings(timings).build();
  }

  /** Embeds TEXT rows here (shards hold embed_tokens) and copies IMAGE rows from the request, in order. */
  private void embed(StepPlan.SequenceRows rows) {
    StepSequence sequence = rows.sequence();
    int hidden = config.hiddenSize();
    int imageRow = 0;
    for (int k = 0; k < rows.numRows(); k++) {
      if (sequence.getModalities(k) == dev.owlery.proto.internal.v1.Modality.MODALITY_IMAGE) {
        rows.images().get(imageRow * hidden, inputs, k * hidden, hidden);
        imageRow++;
        modalities[k] = Modality.VISUAL;
      } else {
        slice.embed(sequence.getTokenIds(k), inputs, k * hidden);
        modalities[k] = Modality.TEXT;
      }
    }
  }

  /**
   * The logits as a wire tensor wrapping a buffer reused by the next step: the response is sent
   * (and serialized, gRPC copies in onNext) by the step thread before the next step runs.
   */
  private Tensor logitTensor(int rows, int localVocab) {
    int count = rows * localVocab;
    int bytes = Math.multiplyExact(count, 4);
    if (logitBytes.length < bytes) {
      logitBytes = new byte[bytes];
      logitFloats = ByteBuffer.wrap(logitBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    }
    logitFloats.put(0, logits, 0, count);
    return Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(rows).addShape(localVocab)
        .setData(UnsafeByteOperations.unsafeWrap(logitBytes, 0, bytes)).build();
  }

  /** Runs the one-value all-reduce of (rank + 1) across the group. */
  RunHealthStepResponse runHealthStep(RunHealthStepRequest step) {
    requireGroup(step.getGroupId(), step.getWorldSize());
    claimStepId(step.getStepId());
    collective.beginStep(step.getStepId());
    float sum = collective.allReduceHealth(collective.rank() + 1);
    StepTraffic traffic = collective.endStep();
    return RunHealthStepResponse.newBuilder().setGroupId(request.getGroupId()).setRank(request.getRank())
        .setWorldSize(request.getWorldSize()).setReducedValue(sum).setAllReduceNs(traffic.allReduceNanos()).build();
  }

  /** Forgets the KV caches of {@code ids}; returns how many were held. */
  int release(List<Long> ids) {
    int released = 0;
    for (long id : ids) {
      released += sequences.remove(id) != null ? 1 : 0;
    }
    return released;
  }

  private void requireGroup(String groupId, int worldSize) {
    if (!groupId.equals(request.getGroupId()) || worldSize != request.getWorldSize()) {
      throw new IllegalStateException("this shard holds rank %d of group '%s' (world size %d). Given: group '%s', world size %d"
          .formatted(request.getRank(), request.getGroupId(), request.getWorldSize(), groupId, worldSize));
    }
    collective.requireHealthy();
  }

  private void claimStepId(long stepId) {
    if (stepId <= lastStepId) {
      throw new IllegalArgumentException("step_id must be greater than the last step run on this rank (%d). Given: %d"
          .formatted(lastStepId, stepId));
    }
    lastStepId = stepId;
  }

  /** Leaves the group (peers' steps fail) and unmaps the weights. */
  @Override
  public void close() {
    collective.close();
    sequences.clear();
    checkpoint.close();
  }
}
