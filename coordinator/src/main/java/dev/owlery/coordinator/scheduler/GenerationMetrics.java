package dev.owlery.coordinator.scheduler;

import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The coordinator's generation meters, one method per event so names and tags cannot drift. Names
 * are dotted, in base units (Prometheus adds {@code _seconds}, {@code _total}); the vLLM metric each
 * one corresponds to is given with it:
 *
 * <ul>
 *   <li>{@value #FIRST_TOKEN_TIMER}: arrival to first sampled token ({@code vllm:time_to_first_token_seconds})
 *   <li>{@value #TIME_PER_OUTPUT_TOKEN_TIMER}: per request with 2+ tokens, (last token - first token) /
 *       (tokens - 1) ({@code vllm:request_time_per_output_token_seconds})
 *   <li>{@value #E2E_TIMER}: arrival to the finish message of a completed request
 *       ({@code vllm:e2e_request_latency_seconds})
 *   <li>{@value #QUEUE_TIMER}: arrival (images encoded included) to the start of prefill
 *       ({@code vllm:request_queue_time_seconds})
 *   <li>{@value #RUNNING_GAUGE}, {@value #WAITING_GAUGE}: sequences running, requests waiting for a
 *       group ({@code vllm:num_requests_running}, {@code vllm:num_requests_waiting})
 *   <li>{@value #ADMITTED_GAUGE}: Generate calls admitted and not yet ended (no vLLM counterpart)
 *   <li>{@value #REQUESTS_COUNTER}: Generate calls by outcome, each call once, tag {@code outcome} =
 *       the status code its client saw, in lower case: {@code ok}, {@code invalid_argument},
 *       {@code not_found}, {@code resource_exhausted}, {@code unavailable}, {@code cancelled} (by the
 *       client), {@code deadline_exceeded}, {@code internal}, {@code unauthenticated}
 *       ({@code vllm:request_success_total} counts the OK ones); tag {@code key} = the caller's API
 *       key id ({@code none} without a key, {@code unknown} for a key not accepted)
 *   <li>{@value #REJECTED_COUNTER}: calls refused with RESOURCE_EXHAUSTED, tag {@code limit} =
 *       {@code max_admitted_requests}, {@code max_queued_per_group}, {@code key_requests_per_second}
 *       or {@code key_tokens_per_minute}
 *   <li>{@value #TOKENS_COUNTER}, {@value #PROMPT_TOKENS_COUNTER}: tokens generated, prompt rows
 *       prefilled ({@code vllm:generation_tokens_total}, {@code vllm:prompt_tokens_total})
 *   <li>{@value #INTER_TOKEN_TIMER}: between two consecutive tokens of a request
 *       ({@code vllm:inter_token_latency_seconds})
 *   <li>{@value #IMAGE_TOKENS_COUNTER}: image rows prefilled (part of the prompt tokens; no vLLM counterpart)
 *   <li>{@value #STEP_TIMER}: one RunStep fan-out of a batch, tag {@code phase} = prefill (the step
 *       carries prompt rows) or decode (one row per sequence); its count is the number of steps
 *   <li>{@value #STEP_SEQUENCES_SUMMARY}: sequences per step (vLLM's batch size)
 *   <li>{@value #STEP_COORDINATOR_TIMER}: the coordinator's own work on a step once every rank
 *       answered: gathering the logit rows or merging the ranks' candidates, sampling, detokenizing
 *       and streaming (no vLLM counterpart)
 *   <li>{@value #STEP_COORDINATOR_SHARE_SUMMARY}: per step, that work's share of the step, work /
 *       (work + the slowest rank's RunStep), 0..1 (no vLLM counterpart)
 *   <li>{@value #STEP_LOGITS_BYTES_SUMMARY}: per step and rank, the bytes of logit rows and
 *       candidates in its answer (no vLLM counterpart)
 *   <li>{@value #PREEMPTIONS_COUNTER}: sequences preempted for KV blocks ({@code vllm:num_preemptions_total})
 *   <li>{@value #KV_BLOCKS_USED_GAUGE}, {@value #KV_BLOCKS_FREE_GAUGE}: KV blocks held by sequences and
 *       free, all groups together ({@code vllm:kv_cache_usage_perc} is used / (used + free))
 * </ul>
 *
 * <p>Timers publish Prometheus histograms ({@code _bucket}) as well as count, sum and max.
 */
public final class GenerationMetrics {

  /** Timer of one RunStep fan-out; tag {@code phase} = prefill or decode. */
  public static final String STEP_TIMER = "owlery.step.duration";
  /** Timer from a request's arrival to its first token. */
  public static final String FIRST_TOKEN_TIMER = "owlery.generate.time_to_first_token";
  /** Timer of a request's mean interval between output tokens (requests with 2+ tokens). */
  public static final String TIME_PER_OUTPUT_TOKEN_TIMER = "owlery.generate.time_per_output_token";
  /** Timer from a request's arrival to its finish message. */
  public static final String E2E_TIMER = "owlery.generate.e2e_latency";
  /** Timer from a request's arrival to the start of its prefill. */
  public static final String QUEUE_TIMER = "owlery.generate.queue_time";
  /** Timer between two consecutive tokens of a request. */
  public static final String INTER_TOKEN_TIMER = "owlery.generate.inter_token_latency";
  /** Counter of image rows prefilled. */
  public static final String IMAGE_TOKENS_COUNTER = "owlery.generate.image_tokens";
  /** Distribution of sequences per step. */
  public static final String STEP_SEQUENCES_SUMMARY = "owlery.step.sequences";
  /** Timer of the coordinator's work on a step after the ranks answered. */
  public static final String STEP_COORDINATOR_TIMER = "owlery.step.coordinator.duration";
  /** Distribution of the coordinator's share of a step, 0..1. */
  public static final String STEP_COORDINATOR_SHARE_SUMMARY = "owlery.step.coordinator.share";
  /** Distribution of the logit bytes one rank's answer to a step carries. */
  public static final String STEP_LOGITS_BYTES_SUMMARY = "owlery.step.logits.bytes";
  /** Counter of preemptions. */
  public static final String PREEMPTIONS_COUNTER = "owlery.scheduler.preemptions";
  /** Gauge of KV blocks held by sequences (Prometheus: owlery_kv_blocks_used), as on every shard. */
  public static final String KV_BLOCKS_USED_GAUGE = "owlery.kv.blocks.used";
  /** Gauge of free KV blocks. */
  public static final String KV_BLOCKS_FREE_GAUGE = "owlery.kv.blocks.free";
  /** Counter of generated tokens. */
  public static final String TOKENS_COUNTER = "owlery.generate.tokens";
  /** Counter of prompt rows prefilled (text tokens and image rows). */
  public static final String PROMPT_TOKENS_COUNTER = "owlery.generate.prompt_tokens";
  /** Counter of Generate calls by how they ended; tags {@code outcome} = the status code, lower case, and {@code key}. */
  public static final String REQUESTS_COUNTER = "owlery.generate.requests";
  /** Counter of Generate calls refused for a limit; tag {@code limit}. */
  public static final String REJECTED_COUNTER = "owlery.admission.rejected";
  /** Gauge of sequences running on shard groups. */
  public static final String RUNNING_GAUGE = "owlery.scheduler.running";
  /** Gauge of requests waiting for a shard group. */
  public static final String WAITING_GAUGE = "owlery.scheduler.waiting";
  /** Gauge of Generate calls admitted and not ended. */
  public static final String ADMITTED_GAUGE = "owlery.requests.admitted";

  /** Which part of a sequence a step computes. */
  public enum Phase {
    PREFILL,
    DECODE
  }

  /** The limit a refused request hit. */
  public enum Limit {
    MAX_ADMITTED_REQUESTS,
    MAX_QUEUED_PER_GROUP,
    /** An API key's requests/s. */
    KEY_REQUESTS_PER_SECOND,
    /** An API key's generated tokens/min. */
    KEY_TOKENS_PER_MINUTE
  }

  private final MeterRegistry meters;
  private final Timer prefillSteps;
  private final Timer decodeSteps;
  private final Timer firstToken;
  private final Timer timePerOutputToken;
  private final Timer endToEnd;
  private final Timer queueTime;
  private final Timer interToken;
  private final Counter tokens;
  private final Counter promptTokens;
  private final Counter imageTokens;
  private final DistributionSummary stepSequences;
  private final Counter preemptions;
  private final Timer coordinatorWork;
  private final DistributionSummary coordinatorShare;
  private final DistributionSummary logitsBytes;

  public GenerationMetrics(MeterRegistry meters) {
    this.meters = meters;
    this.prefillSteps = stepTimer(meters, Phase.PREFILL);
    this.decodeSteps = stepTimer(meters, Phase.DECODE);
    this.firstToken = histogram(Timer.builder(FIRST_TOKEN_TIMER).description("From arrival to the first sampled token"));
    this.timePerOutputToken = histogram(Timer.builder(TIME_PER_OUTPUT_TOKEN_TIMER)
        .description("A request's mean interval between output tokens"));
    this.endToEnd = histogram(Timer.builder(E2E_TIMER).description("From arrival to the finish message"));
    this.queueTime = histogram(Timer.builder(QUEUE_TIMER).description("From arrival to the start of prefill"));
    this.interToken = histogram(Timer.builder(INTER_TOKEN_TIMER)
        .description("Between two consecutive tokens of a request"));
    this.tokens = Counter.builder(TOKENS_COUNTER).description("Tokens generated").register(meters);
    this.promptTokens = Counter.builder(PROMPT_TOKENS_COUNTER).description("Prompt rows prefilled").register(meters);
    this.imageTokens = Counter.builder(IMAGE_TOKENS_COUNTER).description("Image rows prefilled").register(meters);
    this.stepSequences = DistributionSummary.builder(STEP_SEQUENCES_SUMMARY).description("Sequences per step")
        .publishPercentileHistogram().register(meters);
    this.preemptions = Counter.builder(PREEMPTIONS_COUNTER).description("Sequences preempted for KV blocks")
        .register(meters);
    this.coordinatorWork = histogram(Timer.builder(STEP_COORDINATOR_TIMER)
        .description("The coordinator's work on a step after the ranks answered: gather or merge, sample, detokenize, stream"));
    this.coordinatorShare = DistributionSummary.builder(STEP_COORDINATOR_SHARE_SUMMARY)
        .description("The coordinator's work over (its work + the slowest rank's RunStep), per step")
        .publishPercentileHistogram().minimumExpectedValue(0.001).maximumExpectedValue(1.0).register(meters);
    this.logitsBytes = DistributionSummary.builder(STEP_LOGITS_BYTES_SUMMARY)
        .description("Bytes of logit rows and candidates in one rank's answer to a step").register(meters);
  }

  private Timer histogram(Timer.Builder timer) {
    return timer.publishPercentileHistogram().register(meters);
  }

  private Timer stepTimer(MeterRegistry meters, Phase phase) {
    return histogram(Timer.builder(STEP_TIMER).description("One RunStep of a batch on every rank of a group, gathered")
        .tag("phase", phase.name().toLowerCase(Locale.ROOT)));
  }

  /** A step of {@code numSequences} sequences ran; {@code prefill} when it carried prompt rows. */
  void step(boolean prefill, long nanos, int numSequences) {
    (prefill ? prefillSteps : decodeSteps).record(nanos, TimeUnit.NANOSECONDS);
    stepSequences.record(numSequences);
  }

  /** The coordinator worked {@code nanos} on a step whose slowest rank took {@code slowestRankNanos}. */
  void coordinatorWork(long nanos, long slowestRankNanos) {
    coordinatorWork.record(nanos, TimeUnit.NANOSECONDS);
    coordinatorShare.record((double) nanos / (nanos + slowestRankNanos));
  }

  /** A rank's answer to a step carried {@code bytes} of logit rows and candidates. */
  void logitsReceived(long bytes) {
    logitsBytes.record(bytes);
  }

  /** A request's first token, {@code nanos} after its arrival. */
  void firstToken(long nanos) {
    tokens.increment();
    firstToken.record(nanos, TimeUnit.NANOSECONDS);
  }

  /** A request's next token, {@code nanos} after its previous one. */
  void nextToken(long nanos) {
    tokens.increment();
    interToken.record(nanos, TimeUnit.NANOSECONDS);
  }

  void preempted() {
    preemptions.increment();
  }

  /** A sequence starts its prefill of {@code numPromptRows} rows ({@code numImageRows} of images) after waiting {@code queueNanos}. */
  void started(long queueNanos, int numPromptRows, int numImageRows) {
    queueTime.record(queueNanos, TimeUnit.NANOSECONDS);
    promptTokens.increment(numPromptRows);
    imageTokens.increment(numImageRows);
  }

  /** A sequence sent its finish: {@code numTokens} tokens, the first and last {@code decodeNanos} apart. */
  void completed(long endToEndNanos, int numTokens, long decodeNanos) {
    endToEnd.record(endToEndNanos, TimeUnit.NANOSECONDS);
    if (numTokens > 1) {
      timePerOutputToken.record(decodeNanos / (numTokens - 1), TimeUnit.NANOSECONDS);
    }
  }

  /** Publishes the scheduler's running and waiting counts. */
  void watchScheduler(Supplier<Number> running, Supplier<Number> waiting) {
    Gauge.builder(RUNNING_GAUGE, running).description("Sequences running on shard groups").register(meters);
    Gauge.builder(WAITING_GAUGE, waiting).description("Requests waiting for a shard group").register(meters);
  }

  /** Publishes the KV blocks held and free over all groups. */
  void watchKvBlocks(Supplier<Number> used, Supplier<Number> free) {
    Gauge.builder(KV_BLOCKS_USED_GAUGE, used).description("KV blocks held by sequences").register(meters);
    Gauge.builder(KV_BLOCKS_FREE_GAUGE, free).description("KV blocks free").register(meters);
  }

  /** Publishes the number of Generate calls admitted. */
  public void watchAdmitted(Supplier<Number> admitted) {
    Gauge.builder(ADMITTED_GAUGE, admitted).description("Generate calls admitted and not ended").register(meters);
  }

  /** Counts a Generate call refused because {@code limit} was reached (its outcome is counted by {@link #finished}). */
  public void rejected(Limit limit) {
    Counter.builder(REJECTED_COUNTER).description("Generate calls refused for a limit")
        .tag("limit", limit.name().toLowerCase(Locale.ROOT)).register(meters).increment();
  }

  /**
   * Counts a Generate call of the API key {@code keyId} (its id, never the key: "none" without one,
   * "unknown" for a key not accepted) that ended with {@code code}.
   */
  public void finished(Status.Code code, String keyId) {
    Counter.builder(REQUESTS_COUNTER).description("Generate calls by outcome and API key id")
        .tag("outcome", code.name().toLowerCase(Locale.ROOT)).tag("key", keyId).register(meters).increment();
  }
}
