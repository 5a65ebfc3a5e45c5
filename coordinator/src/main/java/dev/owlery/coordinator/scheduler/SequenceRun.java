package dev.owlery.coordinator.scheduler;

import com.google.protobuf.ByteString;
import dev.owlery.coordinator.blocks.BlockAllocator;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.sampling.TokenLogprobs;
import dev.owlery.engine.tokenizer.ImageToken;
import dev.owlery.engine.tokenizer.StreamingDetokenizer;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;
import dev.owlery.proto.v1.Usage;
import io.grpc.Status;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence on one READY group, start to end (spec §4, §7): prefill the prompt rows in chunks of
 * at most {@code maxNumTokens}, then per token sample from the gathered logits (engine {@link
 * Sampler}), compute log-probabilities when asked, detokenize incrementally and stream a delta,
 * until EOS, a stop token, a stop string, {@code max_new_tokens} or the context ends; then the
 * finish message with usage. Stops at the next step boundary when the client cancels. Runs on the
 * group's scheduler thread; the caller releases the sequence and its blocks afterwards.
 */
final class SequenceRun {

  private static final int[] NONE_FORBIDDEN = new int[0];

  private final GenerationJob job;
  private final SequenceRequest request;
  private final ServingGroup group;
  private final ServedModel model;
  private final BlockAllocator blocks;
  private final List<Integer> blockTable;
  private final StepFanOut fanOut;
  private final int maxNumTokens;
  private final GenerationMetrics metrics;
  private final float[] logits;
  private final int hiddenSize;
  private final long rowBytes;
  private final StreamingDetokenizer detokenizer;
  private final StopStrings stopStrings;
  private int numGenerated;
  private long firstTokenNanos;
  private long lastTokenNanos;

  SequenceRun(GenerationJob job, ServingGroup group, ServedModel model, BlockAllocator blocks, List<Integer> blockTable,
      StepFanOut fanOut, int maxNumTokens, GenerationMetrics metrics) {
    this.job = job;
    this.request = job.request();
    this.group = group;
    this.model = model;
    this.blocks = blocks;
    this.blockTable = blockTable;
    this.fanOut = fanOut;
    this.maxNumTokens = maxNumTokens;
    this.metrics = metrics;
    this.logits = new float[model.vocabSize()];
    this.hiddenSize = model.text().hiddenSize();
    this.rowBytes = (long) hiddenSize * Float.BYTES;
    this.detokenizer = model.sentencePiece().newStreamingDetokenizer();
    this.stopStrings = new StopStrings(request.stopStrings());
  }

  /**
   * Runs the sequence, reporting to the job's sink (deltas, then the finish); returns early, with
   * nothing more sent, when the client cancelled. Failures are thrown for the caller to report.
   */
  void run() throws StepFailure, InterruptedException {
    long startNanos = System.nanoTime();
    metrics.started(startNanos - job.arrivalNanos(), request.numPromptRows());
    if (!prefill()) {
      return;
    }
    Sampler sampler = new Sampler(request.sampling(), model.vocabSize());
    sampler.observe(Arrays.stream(request.promptTokenIds()).filter(id -> id != ImageToken.INDEX).toArray());
    while (true) {
      int token = sampler.sample(logits, NONE_FORBIDDEN);
      FinishReason reason = emit(token);
      if (reason != null) {
        finish(reason, startNanos);
        return;
      }
      // The sampled token is text and continues the positions (spec §4).
      int position = request.numPromptRows() + numGenerated - 1;
      StepSequence.Builder row =
          StepSequence.newBuilder().addTokenIds(token).addPositions(position).addModalities(Modality.MODALITY_TEXT);
      if (!step(row, position, GenerationMetrics.Phase.DECODE)) {
        return;
      }
    }
  }

  /** Counts {@code token} and streams it unless it stops the sequence; returns why it ends, or null. */
  private FinishReason emit(int token) {
    numGenerated++;
    lastTokenNanos = System.nanoTime();
    metrics.token();
    if (numGenerated == 1) {
      firstTokenNanos = lastTokenNanos;
      metrics.firstToken(firstTokenNanos - job.arrivalNanos());
    }
    FinishReason stopToken = stopTokenReason(token);
    if (stopToken != null) {
      return stopToken; // not part of the output
    }
    GenerateDelta.Builder delta =
        GenerateDelta.newBuilder().addTokenIds(token).setText(stopStrings.push(detokenizer.next(token)));
    if (request.logprobs()) {
      delta.addLogprobs(toProto(TokenLogprobs.of(logits, 0, model.vocabSize(), token, request.numTopLogprobs())));
    }
    job.sink().onDelta(delta.build());
    return stopStrings.matched() != null ? FinishReason.FINISH_REASON_STOP_STRING
        : numGenerated == request.maxNewTokens() ? FinishReason.FINISH_REASON_LENGTH
        : request.numPromptRows() + numGenerated >= model.maxPositions() ? FinishReason.FINISH_REASON_CONTEXT_LENGTH
        : null;
  }

  /** Sends the text still held back, then the finish message with usage. */
  private void finish(FinishReason reason, long startNanos) {
    if (stopStrings.matched() == null) {
      // Bytes of an unfinished character, and text held back for a stop string that never came.
      String rest = stopStrings.push(detokenizer.finish());
      if (stopStrings.matched() == null) {
        rest += stopStrings.flush();
      } else {
        reason = FinishReason.FINISH_REASON_STOP_STRING;
      }
      if (!rest.isEmpty()) {
        job.sink().onDelta(GenerateDelta.newBuilder().setText(rest).build());
      }
    }
    long end = System.nanoTime();
    job.sink().onFinish(GenerateFinish.newBuilder()
        .setFinishReason(reason)
        .setStopString(stopStrings.matched() == null ? "" : stopStrings.matched())
        .addAllPromptTokenIds(Arrays.stream(request.promptTokenIds()).boxed().toList())
        .setUsage(Usage.newBuilder()
            .setNumPromptTokens(request.numPromptRows())
            .setNumImageTokens(request.numImageRows())
            .setNumCompletionTokens(numGenerated)
            .setTimeToFirstTokenNs(firstTokenNanos - job.arrivalNanos())
            .setTotalDurationNs(end - job.arrivalNanos())
            .setQueueDurationNs(startNanos - job.arrivalNanos()))
        .build());
    metrics.completed(end - job.arrivalNanos(), numGenerated, lastTokenNanos - firstTokenNanos);
  }

  private FinishReason stopTokenReason(int token) {
    if (token == model.eosTokenId()) {
      return FinishReason.FINISH_REASON_EOS_TOKEN;
    }
    for (int stop : request.stopTokenIds()) {
      if (stop == token) {
        return FinishReason.FINISH_REASON_STOP_TOKEN;
      }
    }
    return null;
  }

  /** Runs the prompt rows in steps of at most {@code maxNumTokens}; the last one's logits are kept. */
  private boolean prefill() throws StepFailure, InterruptedException {
    int[] ids = request.promptTokenIds();
    int numImageTokens = model.numImageTokens();
    // Row r of the prompt: its token id (0 for image rows) and, for image rows, (image, row in image).
    int numRows = request.numPromptRows();
    int[] rowTokens = new int[numRows];
    int[] rowImage = new int[numRows];
    int[] rowInImage = new int[numRows];
    int row = 0;
    int image = 0;
    for (int id : ids) {
      if (id == ImageToken.INDEX) {
        for (int k = 0; k < numImageTokens; k++, row++) {
          rowImage[row] = image;
          rowInImage[row] = k;
        }
        image++;
      } else {
        rowImage[row] = -1;
        rowTokens[row++] = id;
      }
    }
    for (int from = 0; from < numRows; from += maxNumTokens) {
      int to = Math.min(numRows, from + maxNumTokens);
      StepSequence.Builder chunk = StepSequence.newBuilder();
      ByteString imageRows = ByteString.EMPTY;
      int numImageRows = 0;
      for (int r = from; r < to; r++) {
        chunk.addTokenIds(rowTokens[r]).addPositions(r);
        if (rowImage[r] < 0) {
          chunk.addModalities(Modality.MODALITY_TEXT);
        } else {
          chunk.addModalities(Modality.MODALITY_IMAGE);
          ByteString embeddings = job.imageEmbeddings().get(rowImage[r]);
          imageRows = imageRows.concat(embeddings.substring(Math.toIntExact(rowInImage[r] * rowBytes),
              Math.toIntExact((rowInImage[r] + 1) * rowBytes)));
          numImageRows++;
        }
      }
      if (numImageRows > 0) {
        chunk.setImageEmbeddings(Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(numImageRows)
            .addShape(hiddenSize).setData(imageRows));
      }
      if (!step(chunk, to - 1, GenerationMetrics.Phase.PREFILL)) {
        return false;
      }
    }
    return true;
  }

  /** Completes {@code rows} (block table, id) and runs it; false when the client cancelled. */
  private boolean step(StepSequence.Builder rows, int lastPosition, GenerationMetrics.Phase phase)
      throws StepFailure, InterruptedException {
    if (job.cancelled().isDone()) {
      return false;
    }
    if (!blocks.cover(blockTable, lastPosition)) {
      throw new NoFreeBlocks(group.groupId(), blocks.numBlocks());
    }
    StepSequence sequence = rows.setSequenceId(job.sequenceId()).addAllBlockIds(blockTable).setAllLogits(false).build();
    long start = System.nanoTime();
    boolean ran = fanOut.run(group, sequence, job.cancelled(), logits);
    metrics.step(phase, System.nanoTime() - start);
    return ran;
  }

  /** The group's KV blocks ran out (the coordinator sizes them so one sequence always fits). */
  static final class NoFreeBlocks extends RuntimeException {
    NoFreeBlocks(String groupId, int numBlocks) {
      super("shard group %s has no free KV block left (%d blocks); retry shortly".formatted(groupId, numBlocks));
    }

    Status status() {
      return Status.RESOURCE_EXHAUSTED.withDescription(getMessage());
    }
  }

  /** The engine's log-probabilities as the public API sends them, with each token's piece. */
  private TokenLogprob toProto(TokenLogprobs lp) {
    TokenLogprob.Builder out = TokenLogprob.newBuilder()
        .setTokenId(lp.tokenId()).setToken(model.sentencePiece().piece(lp.tokenId())).setLogprob(lp.logprob());
    int[] ids = lp.topTokenIds();
    float[] values = lp.topLogprobs();
    for (int i = 0; i < ids.length; i++) {
      out.addTopLogprobs(TopLogprob.newBuilder()
          .setTokenId(ids[i]).setToken(model.sentencePiece().piece(ids[i])).setLogprob(values[i]));
    }
    return out.build();
  }
}
