package dev.owlery.coordinator.api;

/**
 * One API key's limits; 0 turns a limit off.
 *
 * @param requestsPerSecond calls of any Owlery method per second, >= 0 (bursts of up to one second's worth)
 * @param tokensPerMinute tokens generated per minute, >= 0; a Generate call is refused while the
 *     key's budget is spent, and its tokens are charged as they are generated
 */
public record KeyLimits(double requestsPerSecond, long tokensPerMinute) {

  public static final KeyLimits NONE = new KeyLimits(0, 0);

  public KeyLimits {
    if (!(requestsPerSecond >= 0) || Double.isInfinite(requestsPerSecond) || tokensPerMinute < 0) {
      throw new IllegalArgumentException("requestsPerSecond and tokensPerMinute must be >= 0 (0 = no limit). Given: "
          + requestsPerSecond + ", " + tokensPerMinute);
    }
  }
}
