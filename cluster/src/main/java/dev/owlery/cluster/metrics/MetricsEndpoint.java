package dev.owlery.cluster.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The node's Prometheus endpoint: {@code GET /metrics} answers the registry's scrape in the text
 * exposition format. One thread serves scrapes; close it with {@link #close()}.
 */
public final class MetricsEndpoint implements AutoCloseable {

  /** The path Prometheus scrapes. */
  public static final String PATH = "/metrics";

  private static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final HttpServer server;
  private final ExecutorService executor;
  private final PrometheusMeterRegistry registry;

  private MetricsEndpoint(HttpServer server, ExecutorService executor, PrometheusMeterRegistry registry) {
    this.server = server;
    this.executor = executor;
    this.registry = registry;
  }

  /**
   * Starts serving {@code registry} on {@code host:port} (port 0 picks a free one).
   *
   * @throws UncheckedIOException when the address cannot be bound
   */
  public static MetricsEndpoint start(String host, int port, PrometheusMeterRegistry registry) {
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(host, port), 0);
    } catch (IOException e) {
      throw new UncheckedIOException("metrics endpoint could not bind " + host + ":" + port + ": " + e.getMessage(), e);
    }
    ExecutorService executor =
        Executors.newSingleThreadExecutor(Thread.ofPlatform().name("owlery-metrics-http").daemon().factory());
    MetricsEndpoint endpoint = new MetricsEndpoint(server, executor, registry);
    server.createContext(PATH, endpoint::handle);
    server.setExecutor(executor);
    server.start();
    return endpoint;
  }

  public int port() {
    return server.getAddress().getPort();
  }

  /** The scrape URL, e.g. {@code http://127.0.0.1:9400/metrics}, as the registry publishes it. */
  public URI url() {
    InetSocketAddress address = server.getAddress();
    return URI.create("http://" + address.getHostString() + ":" + address.getPort() + PATH);
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (!exchange.getRequestURI().getPath().equals(PATH)) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      String method = exchange.getRequestMethod();
      if (!method.equals("GET") && !method.equals("HEAD")) {
        exchange.getResponseHeaders().set("Allow", "GET, HEAD");
        exchange.sendResponseHeaders(405, -1);
        return;
      }
      byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
      if (method.equals("HEAD")) {
        exchange.sendResponseHeaders(200, -1);
        return;
      }
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    }
  }
}
