package dev.owlery.coordinator.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An http(s) image URL in a chat request is fetched only under an allowed prefix, from a real HTTP
 * server on loopback: the image's bytes become the request's image; a URL outside the prefixes, an
 * answer other than 200 and an image over the size limit are refused naming the field.
 */
class ImageUrlsTest {

  private static final int MAX_IMAGE_BYTES = 4096;

  private HttpServer server;
  private String base;
  private byte[] image;

  @BeforeEach
  void serveImages() throws IOException {
    image = Files.readAllBytes(Fixtures.tinyOwl2().resolve("test_image.png"));
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext("/", exchange -> {
      byte[] body = switch (exchange.getRequestURI().getPath()) {
        case "/images/test.png", "/private/test.png" -> image;
        case "/images/huge.png" -> new byte[MAX_IMAGE_BYTES + 1];
        default -> null;
      };
      exchange.sendResponseHeaders(body == null ? 404 : 200, body == null ? -1 : body.length);
      if (body != null) {
        try (OutputStream out = exchange.getResponseBody()) {
          out.write(body);
        }
      }
      exchange.close();
    });
    server.start();
    base = "http://127.0.0.1:" + server.getAddress().getPort();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private OpenAiRequest chatWithImageAt(String url) {
    OpenAiRequestParser parser = new OpenAiRequestParser(1 << 20,
        new ImageUrls(List.of(base + "/images/"), MAX_IMAGE_BYTES, Duration.ofSeconds(10)));
    return parser.parseChat("""
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s"}}]}]}
        """.formatted(url).getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void anImageUnderAnAllowedPrefixIsFetched() {
    assertThat(chatWithImageAt(base + "/images/test.png").generate().getImages(0).getData().toByteArray())
        .isEqualTo(image);
  }

  @Test
  void otherUrlsAndFailedFetchesAreRefusedNamingTheField() {
    assertThatThrownBy(() -> chatWithImageAt(base + "/private/test.png")).isInstanceOfSatisfying(
        OpenAiRequestException.class, e -> {
          assertThat(e.param()).isEqualTo("messages[0].content[0].image_url.url");
          assertThat(e).hasMessage("this server fetches images only from URLs starting with [" + base + "/images/]; "
              + "send the image inline as a data: URI (data:image/png;base64,... or data:image/jpeg;base64,...) at "
              + "messages[0].content[0].image_url.url");
        });
    assertThatThrownBy(() -> chatWithImageAt(base + "/images/missing.png")).hasMessage(
        "fetching the image at messages[0].content[0].image_url.url answered HTTP 404, not 200");
    assertThatThrownBy(() -> chatWithImageAt(base + "/images/huge.png")).hasMessage(
        "the image at messages[0].content[0].image_url.url is larger than 4096 bytes");
    assertThatThrownBy(() -> new OpenAiRequestParser(1 << 20, ImageUrls.NONE).parseChat("""
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s"}}]}]}
        """.formatted(base + "/images/test.png").getBytes(StandardCharsets.UTF_8)))
        .hasMessageStartingWith("this server does not fetch images from URLs; send the image inline as a data: URI");
  }

  @Test
  void aPrefixMustEndTheHostWithASlash() {
    assertThatThrownBy(() -> HttpApiConfig.onPort(0).withImageUrlPrefixes(List.of("https://example.com")))
        .hasMessage("an allowed image URL prefix must be http(s)://HOST[:PORT]/ followed by any path ending in '/'. "
            + "Given: 'https://example.com'");
    assertThatThrownBy(() -> HttpApiConfig.onPort(0).withImageUrlPrefixes(List.of("ftp://example.com/")))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(HttpApiConfig.onPort(0).withImageUrlPrefixes(List.of("https://example.com/public/")).imageUrlPrefixes())
        .containsExactly("https://example.com/public/");
  }
}
