package dev.owlery.coordinator.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * One API key as the coordinator holds it: its id (safe to log and to tag metrics with), the
 * SHA-256 digest of its secret (the secret itself is not kept) and its limits' buckets. {@link
 * #toString()} is the id.
 */
public final class ApiKey {

  /** The caller of a coordinator that takes no keys: id "none", no limits. */
  static final ApiKey NONE = new ApiKey("none", new byte[0], KeyLimits.NONE);

  private static final long SECOND_NANOS = TimeUnit.SECONDS.toNanos(1);
  private static final long MINUTE_NANOS = TimeUnit.MINUTES.toNanos(1);

  private final String id;
  private final byte[] digest;
  private final KeyLimits limits;
  private final TokenBucket requests;
  private final TokenBucket tokens;

  ApiKey(String id, byte[] digest, KeyLimits limits) {
    this.id = id;
    this.digest = digest.clone();
    this.limits = limits;
    double rate = limits.requestsPerSecond();
    double burst = Math.max(1, rate); // a rate under 1/s still lets one request through at a time
    this.requests = rate > 0 ? new TokenBucket(burst, (long) (SECOND_NANOS * burst / rate), System::nanoTime) : null;
    this.tokens = limits.tokensPerMinute() > 0
        ? new TokenBucket(limits.tokensPerMinute(), MINUTE_NANOS, System::nanoTime) : null;
  }

  /** A key whose secret is {@code secret}: id "k-" and the first 8 hex digits of its SHA-256. */
  static ApiKey ofSecret(String secret, KeyLimits limits) {
    byte[] digest = sha256(secret);
    return new ApiKey("k-" + HexFormat.of().formatHex(digest, 0, 4), digest, limits);
  }

  static byte[] sha256(String secret) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

  public String id() {
    return id;
  }

  /** Whether {@code presentedDigest} is this key's digest, in time independent of where they differ. */
  boolean matches(byte[] presentedDigest) {
    return MessageDigest.isEqual(digest, presentedDigest);
  }

  /**
   * Takes one request from the key's requests/s budget.
   *
   * @return null when allowed, else why not (naming the limit and when to retry)
   */
  String admitRequest() {
    long nanos = requests == null ? 0 : requests.take(1);
    return nanos == 0 ? null : refusal("over %s requests/s".formatted(number(limits.requestsPerSecond())), nanos);
  }

  /**
   * Whether the key's generated-tokens/min budget has a token left (tokens are charged as generated).
   *
   * @return null when allowed, else why not
   */
  String admitGeneration() {
    long nanos = tokens == null ? 0 : tokens.nanosUntil(1);
    return nanos == 0 ? null : refusal("over %d generated tokens/min".formatted(limits.tokensPerMinute()), nanos);
  }

  /** Charges {@code numTokens} generated tokens to the key's budget. */
  void generated(int numTokens) {
    if (tokens != null) {
      tokens.charge(numTokens);
    }
  }

  private String refusal(String limit, long retryNanos) {
    double seconds = Math.ceil(retryNanos / 1e8) / 10;
    return "key %s: %s; retry in %s s".formatted(id, limit, String.format(Locale.ROOT, "%.1f", seconds));
  }

  private static String number(double value) {
    return value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value);
  }

  @Override
  public String toString() {
    return id;
  }
}
