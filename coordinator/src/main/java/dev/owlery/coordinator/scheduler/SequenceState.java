package dev.owlery.coordinator.scheduler;

import com.google.protobuf.ByteString;
import dev.owlery.coordinator.model.ServedModel;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence in a group's batch (spec §4, §7): its rows — the prompt's, then every generated
 * token's — of which the first {@link #numComputed()} have their KV on the shards, its block table,
 * its sampler, detokenizer and stop strings. The batch loop asks for its next rows, runs them with
 * other sequences' rows, and, once every known row is computed, has it sample the next token from
 * the gathered logits, stream it and say whether it ends. Preemption forgets the computed rows (the
 * blocks go back to the pool); they are recomputed later from the prompt and the tokens already
 * sent, which are not sent again. A group that goes DOWN preempts all of its sequences so, and they
 * are readmitted the same way on the re-formed group or on another one ({@link #moveTo}). Used by
 * one group loop's thread at a time (its {@link #pick} on a sampling thread while that loop waits);
 * a move hands it over through a concurrent queue.
 */
final class SequenceState {

  private final GenerationJob job;
  private final SequenceRequest request;
  private final ServedModel model;
  private final GenerationMetrics metrics;
  /** Admission order in the group: the lowest runs first, the highest is preempted first. */
  private long order;
  private final LastRowLogits logits;
  private final int hiddenSize;
  private final long rowBytes;
  private final StreamingDetokenizer detokenizer;
  private final StopStrings stopStrings;
  private final Sampler sampler;
  private final List<Integer> blockTable = new ArrayList<>();
  /** Prompt row r: its token id (0 for image rows), and for image rows its image and row in it. */
  private final int[] promptTokens;
  private final int[] promptImage;
  private final int[] promptRowInImage;
  private int[] generated = new int[16];
  private int numGenerated;
  private int numComputed;
  private long startNanos;
  private long firstTokenNanos;
  private long lastTokenNanos;
  /** The next token and its log-probabilities once {@link #pick} ran; -1 and null until then. */
  private int pickedToken = -1;
  private TokenLogprobs pickedLogprobs;

  SequenceState(GenerationJob job, ServedModel model, GenerationMetrics metrics, long order) {
    this(job, model, metrics, order, true);
  }

  /** @param candidatesAllowed false: the whole logit row every step, even where candidates would do (a benchmark's baseline) */
  SequenceState(GenerationJob job, ServedModel model, GenerationMetrics metrics, long order, boolean candidatesAllowed) {
    this.job = job;
    this.request = job.request();
    this.model = model;
    this.metrics = metrics;
    this.order = order;
    this.hiddenSize = model.text().hiddenSize();
    this.rowBytes = (long) hiddenSize * Float.BYTES;
    this.detokenizer = model.sentencePiece().newStreamingDetokenizer();
    this.stopStrings = new StopStrings(request.stopStrings());
    this.sampler = new Sampler(request.sampling(), model.vocabSize());
    this.logits = new LastRowLogits(sampler, request.logprobs() ? request.numTopLogprobs() : 0, model.vocabSize(),
        candidatesAllowed);
    int[] ids = request.promptTokenIds();
    sampler.observe(Arrays.stream(ids).filter(id -> id != ImageToken.INDEX).toArray());
    int numRows = request.numPromptRows();
    this.promptTokens = new int[numRows];
    this.promptImage = new int[numRows];
    this.promptRowInImage = new int[numRows];
    int row = 0;
    int image = 0;
    for (int id : ids) {
      if (id == ImageToken.INDEX) {
        for (int k = 0; k < model.numImageTokens(); k++, row++) {
          promptImage[row] = image;
          promptRowInImage[row] = k;
        }
        image++;
      } else {
        promptImage[row] = -1;
        promptTokens[row++] = id;
      }
    }
  }

  GenerationJob job() {
    return job;
  }

  long sequenceId() {
    return job.sequenceId();
  }

  long order() {
    return order;
  }

  boolean cancelled() {
    return job.cancelled().isDone();
  }

  /** Where the step writes the sequence's last row's logits, whole or as the ranks' candidates. */
  LastRowLogits logits() {
    return logits;
  }

  /** The KV blocks holding its computed rows; grown by the loop before each step. */
  List<Integer> blockTable() {
    return blockTable;
  }

  /** Rows whose KV is on the shards. */
  int numComputed() {
    return numComputed;
  }

  /** Rows known but not computed: the prompt's still to prefill, or the token just sampled. */
  int numPending() {
    return request.numPromptRows() + numGenerated - numComputed;
  }

  /** True until the prompt's rows are computed (again, after a preemption) and decoding goes row by row. */
  boolean prefilling() {
    return numPending() > 1;
  }

  /**
   * The next {@code n} rows, at positions {@link #numComputed()} onwards, with the block table;
   * the first call marks the start of the sequence (queue time, prompt tokens).
   */
  StepSequence nextRows(int n) {
    if (startNanos == 0) {
      startNanos = System.nanoTime();
      metrics.started(startNanos - job.arrivalNanos(), request.numPromptRows(), request.numImageRows());
    }
    StepSequence.Builder rows = StepSequence.newBuilder().setSequenceId(job.sequenceId());
    ByteString imageRows = ByteString.EMPTY;
    int numImageRows = 0;
    for (int r = numComputed; r < numComputed + n; r++) {
      rows.addPositions(r);
      if (r >= promptTokens.length) {
        // A generated token: text, continuing the positions (spec §4).
        rows.addTokenIds(generated[r - promptTokens.length]).addModalities(Modality.MODALITY_TEXT);
      } else if (promptImage[r] < 0) {
        rows.addTokenIds(promptTokens[r]).addModalities(Modality.MODALITY_TEXT);
      } else {
        rows.addTokenIds(0).addModalities(Modality.MODALITY_IMAGE);
        ByteString embeddings = job.imageEmbeddings().get(promptImage[r]);
        imageRows = imageRows.concat(embeddings.substring(Math.toIntExact(promptRowInImage[r] * rowBytes),
            Math.toIntExact((promptRowInImage[r] + 1) * rowBytes)));
        numImageRows++;
      }
    }
    if (numImageRows > 0) {
      rows.setImageEmbeddings(Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(numImageRows)
          .addShape(hiddenSize).setData(imageRows));
    }
    if (logits.numCandidates() > 0) {
      rows.setNumCandidates(logits.numCandidates()).setCandidateTemperature(logits.candidateTemperature());
    }
    return rows.addAllBlockIds(blockTable).setAllLogits(false).build();
  }

  /** The step that ran {@code n} rows of this sequence succeeded. */
  void computed(int n) {
    numComputed += n;
  }

  /** Forgets the computed rows (the loop frees the blocks); they are recomputed on readmission. */
  void preempt() {
    numComputed = 0;
  }

  /** A preempted sequence adopted by another group's loop takes its place there in admission order. */
  void moveTo(long newOrder) {
    if (numComputed != 0 || !blockTable.isEmpty()) {
      throw new IllegalStateException("sequence " + sequenceId() + " still holds " + numComputed
          + " computed rows in blocks " + blockTable + "; only a preempted sequence can move to another group");
    }
    order = newOrder;
  }

  /**
   * Samples the next token from {@link #logits()} (every known row is computed), streams it and
   * returns why the sequence ends, or null when it goes on.
   */
  FinishReason sampleNext() {
    if (pickedToken < 0) {
      pick();
    }
    int token = pickedToken;
    TokenLogprobs logprobs = pickedLogprobs;
    pickedToken = -1;
    pickedLogprobs = null;
    if (numGenerated == generated.length) {
      generated = Arrays.copyOf(generated, generated.length * 2);
    }
    generated[numGenerated++] = token;
    long now = System.nanoTime();
    if (numGenerated == 1) {
      firstTokenNanos = now;
      metrics.firstToken(now - job.arrivalNanos());
    } else {
      metrics.nextToken(now - lastTokenNanos);
    }
    lastTokenNanos = now;
    FinishReason stopToken = stopTokenReason(token);
    if (stopToken != null) {
      numGenerated--; // not part of the output, and never computed
      return stopToken;
    }
    GenerateDelta.Builder delta =
        GenerateDelta.newBuilder().addTokenIds(token).setText(stopStrings.push(detokenizer.next(token)));
    if (request.logprobs()) {
      delta.addLogprobs(toProto(logprobs));
    }
    job.sink().onDelta(delta.build());
    return stopStrings.matched() != null ? FinishReason.FINISH_REASON_STOP_STRING
        : numGenerated == request.maxNewTokens() ? FinishReason.FINISH_REASON_MAX_NEW_TOKENS
        : request.numPromptRows() + numGenerated >= model.maxPositions() ? FinishReason.FINISH_REASON_MAX_POSITIONS
        : null;
  }

  /**
   * The sampler's work on the next token (and its log-probabilities when asked), without
   * streaming it: {@link #sampleNext} streams it. Runs on a {@link SamplingPool} thread while the
   * loop's thread waits, or on the loop's thread.
   */
  void pick() {
    pickedToken = logits.sample();
    pickedLogprobs = request.logprobs() ? logits.logprobs(pickedToken) : null;
  }

  /** Whether the step computing its next {@code n} rows leaves it to sample a token. */
  boolean samplesAfter(int n) {
    return numPending() == n;
  }

  /** Sends the text still held back, then the finish message with usage. */
  void finish(FinishReason finishReason) {
    FinishReason reason = finishReason;
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
    int numCompletionTokens = reason == FinishReason.FINISH_REASON_EOS_TOKEN
        || reason == FinishReason.FINISH_REASON_STOP_TOKEN ? numGenerated + 1 : numGenerated;
    long end = System.nanoTime();
    // Measured before the client can see the end, so that whoever reads the meters after the
    // answer finds this request in them.
    metrics.completed(end - job.arrivalNanos(), numCompletionTokens, lastTokenNanos - firstTokenNanos);
    job.sink().onFinish(GenerateFinish.newBuilder()
        .setFinishReason(reason)
        .setStopString(stopStrings.matched() == null ? "" : stopStrings.matched())
        .addAllPromptTokenIds(Arrays.stream(request.promptTokenIds()).boxed().toList())
        .setUsage(Usage.newBuilder()
            .setNumPromptTokens(request.numPromptRows())
            .setNumImageTokens(request.numImageRows())
            .setNumCompletionTokens(numCompletionTokens)
            .setTimeToFirstTokenNs(firstTokenNanos - job.arrivalNanos())
            .setTotalDurationNs(end - job.arrivalNanos())
            .setQueueDurationNs(startNanos - job.arrivalNanos()))
        .build());
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
