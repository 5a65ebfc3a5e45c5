package dev.owlery.coordinator.scheduler;

import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
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
 *   <li>{@value #REQUESTS_COUNTER}: Generate calls by outcome, tag {@code outcome} = status code in
 *       lower case ({@code vllm:request_success_total} counts the OK ones)
 *   <li>{@value #REJECTED_COUNTER}: calls refused with RESOURCE_EXHAUSTED, tag {@code limit} =
 *       {@code max_admitted_requests} or {@code max_queued_per_group}
 *   <li>{@value #TOKENS_COUNTER}, {@value #PROMPT_TOKENS_COUNTER}: tokens generated, prompt rows
 *       prefilled ({@code vllm:generation_tokens_total}, {@code vllm:prompt_tokens_total})
 *   <li>{@value #STEP_TIMER}: one RunStep fan-out, tag {@code phase} = prefill or decode
 * </ul>
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
  /** Counter of generated tokens. */
  public static final String TOKENS_COUNTER = "owlery.generate.tokens";
  /** Counter of prompt rows prefilled (text tokens and image rows). */
  public static final String PROMPT_TOKENS_COUNTER = "owlery.generate.prompt_tokens";
  /** Counter of Generate calls by how they ended; tag {@code outcome} = the status code, lower case. */
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
    MAX_QUEUED_PER_GROUP
  }

  private final MeterRegistry meters;
  private final Timer prefillSteps;
  private final Timer decodeSteps;
  private final Timer firstToken;
  private final Timer timePerOutputToken;
  private final Timer endToEnd;
  private final Timer queueTime;
  private final Counter tokens;
  private final Counter promptTokens;

  public GenerationMetrics(MeterRegistry meters) {
    this.meters = meters;
    this.prefillSteps = stepTimer(meters, Phase.PREFILL);
    this.decodeSteps = stepTimer(meters, Phase.DECODE);
    this.firstToken = Timer.builder(FIRST_TOKEN_TIMER).description("From arrival to the first sampled token")
        .register(meters);
    this.timePerOutputToken = Timer.builder(TIME_PER_OUTPUT_TOKEN_TIMER)
        .description("A request's mean interval between output tokens").register(meters);
    this.endToEnd = Timer.builder(E2E_TIMER).description("From arrival to the finish message").register(meters);
    this.queueTime = Timer.builder(QUEUE_TIMER).description("From arrival to the start of prefill").register(meters);
    this.tokens = Counter.builder(TOKENS_COUNTER).description("Tokens generated").register(meters);
    this.promptTokens = Counter.builder(PROMPT_TOKENS_COUNTER).description("Prompt rows prefilled").register(meters);
  }

  private static Timer stepTimer(MeterRegistry meters, Phase phase) {
    return Timer.builder(STEP_TIMER).description("One RunStep on every rank of a group, gathered")
        .tag("phase", phase.name().toLowerCase(Locale.ROOT)).register(meters);
  }

  void step(Phase phase, long nanos) {
    (switch (phase) {
      case PREFILL -> prefillSteps;
      case DECODE -> decodeSteps;
    }).record(nanos, TimeUnit.NANOSECONDS);
  }

  void firstToken(long nanos) {
    firstToken.record(nanos, TimeUnit.NANOSECONDS);
  }

  void token() {
    tokens.increment();
  }

  /** A sequence starts its prefill of {@code numPromptRows} rows after waiting {@code queueNanos}. */
  void started(long queueNanos, int numPromptRows) {
    queueTime.record(queueNanos, TimeUnit.NANOSECONDS);
    promptTokens.increment(numPromptRows);
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

  /** Publishes the number of Generate calls admitted. */
  public void watchAdmitted(Supplier<Number> admitted) {
    Gauge.builder(ADMITTED_GAUGE, admitted).description("Generate calls admitted and not ended").register(meters);
  }

  /** Counts a Generate call refused because {@code limit} was reached (its outcome is counted by {@link #finished}). */
  public void rejected(Limit limit) {
    Counter.builder(REJECTED_COUNTER).description("Generate calls refused for a limit")
        .tag("limit", limit.name().toLowerCase(Locale.ROOT)).register(meters).increment();
  }

  /** Counts a Generate call that ended with {@code code}. */
  public void finished(Status.Code code) {
    Counter.builder(REQUESTS_COUNTER).description("Generate calls by outcome")
        .tag("outcome", code.name().toLowerCase(Locale.ROOT)).register(meters).increment();
  }
}
