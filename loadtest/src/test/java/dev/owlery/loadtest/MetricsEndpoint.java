package dev.owlery.loadtest;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real HTTP server on loopback serving fixed Prometheus text as Micrometer writes it: {@code
 * /coordinator} (scheduler gauges and counters; each scrape adds one preemption, two steps of
 * three sequences whose coordinator shares add up to 0.25, three image cache hits and one miss), {@code /shard} (a rank's KV gauges) and {@code /broken} (503).
 */
final class MetricsEndpoint implements AutoCloseable {

  static final double COORDINATOR_KV_USED = 30;
  static final double COORDINATOR_KV_FREE = 90;
  static final double SHARD_KV_USED = 12;
  static final double SHARD_KV_FREE = 4;

  private final HttpServer server;
  /** Scrapes of /coordinator so far. */
  final AtomicInteger coordinatorScrapes = new AtomicInteger();

  MetricsEndpoint() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/coordinator", exchange -> {
      int n = coordinatorScrapes.incrementAndGet();
      answer(exchange, 200, """
          # HELP owlery_kv_blocks_used KV blocks held by sequences
          # TYPE owlery_kv_blocks_used gauge
          owlery_kv_blocks_used %s
          # TYPE owlery_kv_blocks_free gauge
          owlery_kv_blocks_free %s
          owlery_scheduler_waiting 2.0
          owlery_scheduler_running 4.0
          # TYPE owlery_scheduler_preemptions_total counter
          owlery_scheduler_preemptions_total %d.0
          owlery_step_sequences_count %d.0
          owlery_step_sequences_sum %d.0
          owlery_step_sequences_max NaN
          owlery_step_sequences_bucket{le="1.0",} 0.0
          owlery_step_sequences_bucket{le="+Inf",} %d.0
          owlery_step_duration_seconds_count{phase="decode",} 8.0
          # TYPE owlery_image_cache_hits_total counter
          owlery_image_cache_hits_total %d.0
          owlery_image_cache_misses_total %d.0
          owlery_step_coordinator_share_count %d.0
          owlery_step_coordinator_share_sum %s
          """.formatted(COORDINATOR_KV_USED, COORDINATOR_KV_FREE, n, 2 * n, 6 * n, 2 * n, 3 * n, n, 2 * n, 0.25 * n));
    });
    server.createContext("/shard", exchange -> answer(exchange, 200, """
        # TYPE owlery_kv_blocks_used gauge
        owlery_kv_blocks_used %s
        owlery_kv_blocks_free %s
        owlery_shard_step_duration_seconds_bucket{le="+Inf",} 3.0
        """.formatted(SHARD_KV_USED, SHARD_KV_FREE)));
    server.createContext("/broken", exchange -> answer(exchange, 503, "draining\n"));
    server.start();
  }

  private static void answer(com.sun.net.httpserver.HttpExchange exchange, int code, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    exchange.sendResponseHeaders(code, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  String url(String path) {
    return "http://127.0.0.1:" + server.getAddress().getPort() + path;
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
