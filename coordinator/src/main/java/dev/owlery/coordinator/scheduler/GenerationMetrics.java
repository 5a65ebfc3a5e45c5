package dev.owlery.coordinator.scheduler;

import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/** The coordinator's generation meters, one method per event so names and tags cannot drift. */
public final class GenerationMetrics {

  /** Timer of one RunStep fan-out; tag {@code phase} = prefill or decode. */
  public static final String STEP_TIMER = "owlery.step.duration";
  /** Timer from a request's arrival to its first token. */
  public static final String FIRST_TOKEN_TIMER = "owlery.generate.time_to_first_token";
  /** Counter of generated tokens. */
  public static final String TOKENS_COUNTER = "owlery.generate.tokens";
  /** Counter of Generate calls by how they ended; tag {@code outcome} = the status code, lower case. */
  public static final String REQUESTS_COUNTER = "owlery.generate.requests";

  /** Which part of a sequence a step computes. */
  public enum Phase {
    PREFILL,
    DECODE
  }

  private final MeterRegistry meters;
  private final Timer prefillSteps;
  private final Timer decodeSteps;
  private final Timer firstToken;
  private final Counter tokens;

  public GenerationMetrics(MeterRegistry meters) {
    this.meters = meters;
    this.prefillSteps = stepTimer(meters, Phase.PREFILL);
    this.decodeSteps = stepTimer(meters, Phase.DECODE);
    this.firstToken = Timer.builder(FIRST_TOKEN_TIMER).description("From arrival to the first sampled token")
        .register(meters);
    this.tokens = Counter.builder(TOKENS_COUNTER).description("Tokens generated").register(meters);
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

  /** Counts a Generate call that ended with {@code code}. */
  public void finished(Status.Code code) {
    Counter.builder(REQUESTS_COUNTER).description("Generate calls by outcome")
        .tag("outcome", code.name().toLowerCase(Locale.ROOT)).register(meters).increment();
  }
}
