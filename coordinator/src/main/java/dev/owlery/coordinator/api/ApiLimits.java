package dev.owlery.coordinator.api;

/**
 * Limits and defaults of the public API that are the server's choice (owlery.proto documents them).
 *
 * @param defaultMaxNewTokens max_new_tokens of a request that does not set it, >= 1
 * @param maxImagesPerRequest most images in one request (one vision worker batch), >= 0
 * @param maxImageBytes largest encoded image, >= 1
 * @param maxAdmittedRequests most Generate calls admitted at once (encoding images, waiting for or
 *     running on a shard group); one more is answered RESOURCE_EXHAUSTED at once, >= 1
 */
public record ApiLimits(int defaultMaxNewTokens, int maxImagesPerRequest, int maxImageBytes, int maxAdmittedRequests) {

  /** At most 16 stop strings (owlery.proto). */
  public static final int MAX_STOP_STRINGS = 16;
  /** Stop strings are 1..64 characters (owlery.proto). */
  public static final int MAX_STOP_STRING_LENGTH = 64;

  public ApiLimits {
    if (defaultMaxNewTokens < 1 || maxImagesPerRequest < 0 || maxImageBytes < 1) {
      throw new IllegalArgumentException("defaultMaxNewTokens >= 1, maxImagesPerRequest >= 0, maxImageBytes >= 1. Given: "
          + defaultMaxNewTokens + ", " + maxImagesPerRequest + ", " + maxImageBytes);
    }
    if (maxAdmittedRequests < 1) {
      throw new IllegalArgumentException("maxAdmittedRequests must be >= 1. Given: " + maxAdmittedRequests);
    }
  }

  /** 256 new tokens, 8 images (a vision worker's default batch), 20 MiB per image, 256 requests admitted. */
  public static ApiLimits defaults() {
    return new ApiLimits(256, 8, 20 << 20, 256);
  }

  public ApiLimits withMaxAdmittedRequests(int value) {
    return new ApiLimits(defaultMaxNewTokens, maxImagesPerRequest, maxImageBytes, value);
  }
}
