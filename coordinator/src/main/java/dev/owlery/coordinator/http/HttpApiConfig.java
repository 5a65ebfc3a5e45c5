package dev.owlery.coordinator.http;

import java.time.Duration;
import java.util.List;

/**
 * Whether and where the coordinator serves the OpenAI-compatible HTTP API.
 *
 * @param enabled whether to serve it at all ({@link #OFF}: no HTTP server)
 * @param port the TCP port on the coordinator's gRPC host, 0 picks one
 * @param requestTimeout the deadline of each generating request's {@code Generate} call (HTTP has none of its own)
 * @param imageUrlPrefixes the http(s) URL prefixes images may be fetched from ({@link ImageUrls}); empty: none
 */
public record HttpApiConfig(boolean enabled, int port, Duration requestTimeout, List<String> imageUrlPrefixes) {

  /** No HTTP API. */
  public static final HttpApiConfig OFF = new HttpApiConfig(false, 0, Duration.ofMinutes(10), List.of());

  /** How long fetching one image URL may take. */
  public static final Duration IMAGE_FETCH_TIMEOUT = Duration.ofSeconds(30);

  public HttpApiConfig {
    imageUrlPrefixes = List.copyOf(imageUrlPrefixes);
    imageUrlPrefixes.forEach(ImageUrls::checkPrefix);
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("the HTTP API's port must be in 0..65535. Given: " + port);
    }
    if (requestTimeout == null || requestTimeout.isNegative() || requestTimeout.isZero()) {
      throw new IllegalArgumentException("the HTTP API's request timeout must be a positive duration. Given: "
          + requestTimeout);
    }
  }

  /** The HTTP API on {@code port} (0 picks one), each request given 10 minutes, no image URL fetched. */
  public static HttpApiConfig onPort(int port) {
    return new HttpApiConfig(true, port, OFF.requestTimeout(), List.of());
  }

  /** This config, fetching images from URLs starting with one of {@code prefixes}. */
  public HttpApiConfig withImageUrlPrefixes(List<String> prefixes) {
    return new HttpApiConfig(enabled, port, requestTimeout, prefixes);
  }
}
