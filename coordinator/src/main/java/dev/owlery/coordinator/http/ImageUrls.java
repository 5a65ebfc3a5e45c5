package dev.owlery.coordinator.http;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;

/**
 * Which http(s) image URLs the HTTP API fetches: only those starting with one of the allowed
 * prefixes (each ending in {@code /}, e.g. {@code https://images.example.com/public/}), none by
 * default. A fetch follows no redirect, waits at most the timeout and reads at most the largest
 * image a request may hold; anything else is refused with an {@link OpenAiRequestException}.
 * Thread-safe.
 */
public final class ImageUrls {

  /** No URL is fetched: images come inline as {@code data:} URIs. */
  public static final ImageUrls NONE = new ImageUrls(List.of(), 1, Duration.ofSeconds(1));

  private final List<String> allowedPrefixes;
  private final int maxImageBytes;
  private final Duration timeout;
  private final HttpClient http;

  /**
   * @param allowedPrefixes URL prefixes, each http(s) and ending in {@code /} (so a prefix cannot match another host)
   * @param maxImageBytes the largest image read
   * @param timeout how long one fetch may take
   */
  public ImageUrls(List<String> allowedPrefixes, int maxImageBytes, Duration timeout) {
    allowedPrefixes.forEach(ImageUrls::checkPrefix);
    this.allowedPrefixes = List.copyOf(allowedPrefixes);
    this.maxImageBytes = maxImageBytes;
    this.timeout = timeout;
    this.http = allowedPrefixes.isEmpty() ? null
        : HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).connectTimeout(timeout).build();
  }

  /**
   * Refuses a prefix that is not {@code http(s)://HOST[:PORT]/...} ending in {@code /}: without the
   * slash after the host, {@code https://example.com} would also allow {@code https://example.com.evil.org/}.
   */
  static void checkPrefix(String prefix) {
    if (!(prefix.startsWith("http://") || prefix.startsWith("https://")) || !prefix.endsWith("/")
        || prefix.indexOf('/', prefix.indexOf("//") + 2) < 0 || prefix.indexOf("//") + 2 == prefix.indexOf('/',
        prefix.indexOf("//") + 2)) {
      throw new IllegalArgumentException("an allowed image URL prefix must be http(s)://HOST[:PORT]/ followed by any "
          + "path ending in '/'. Given: '" + prefix + "'");
    }
  }

  /** The allowed prefixes, in the order given. */
  public List<String> allowedPrefixes() {
    return allowedPrefixes;
  }

  /**
   * The bytes at {@code url}, an http(s) URL given at {@code path} of the request.
   *
   * @throws OpenAiRequestException when the URL is not allowed, or its server does not answer 200 with at most
   *     the largest image allowed within the timeout
   */
  byte[] fetch(String url, String path) {
    if (allowedPrefixes.stream().noneMatch(url::startsWith)) {
      throw new OpenAiRequestException(path, (allowedPrefixes.isEmpty() ? "this server does not fetch images from URLs"
          : "this server fetches images only from URLs starting with " + allowedPrefixes)
          + "; send the image inline as a data: URI (data:image/png;base64,... or data:image/jpeg;base64,...) at " + path);
    }
    HttpRequest request;
    try {
      request = HttpRequest.newBuilder(URI.create(url)).timeout(timeout).GET().build();
    } catch (IllegalArgumentException e) {
      throw new OpenAiRequestException(path, path + " is not a valid URL: " + e.getMessage());
    }
    try {
      HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
      try (InputStream body = response.body()) {
        if (response.statusCode() != 200) {
          throw new OpenAiRequestException(path, "fetching the image at %s answered HTTP %d, not 200"
              .formatted(path, response.statusCode()));
        }
        byte[] image = body.readNBytes(maxImageBytes + 1);
        if (image.length > maxImageBytes) {
          throw new OpenAiRequestException(path, "the image at %s is larger than %d bytes".formatted(path,
              maxImageBytes));
        }
        return image;
      }
    } catch (IOException e) {
      throw new OpenAiRequestException(path, "the image at %s could not be fetched within %s: %s".formatted(path,
          timeout, e.toString()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new OpenAiRequestException(path, "fetching the image at " + path + " was interrupted");
    }
  }
}
