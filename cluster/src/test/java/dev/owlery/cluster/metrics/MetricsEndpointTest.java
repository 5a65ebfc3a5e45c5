package dev.owlery.cluster.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.cluster.testing.GrpcCleanup;
import io.micrometer.core.instrument.Counter;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class MetricsEndpointTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return http.send(request.timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void metricsAnswersPrometheusTextWithRegisteredCounter() throws Exception {
    PrometheusMeterRegistry registry = NodeMetrics.newRegistry("node-1", "coordinator");
    Counter.builder("owlery.test.requests").description("Requests the test made").register(registry).increment(3);
    MetricsEndpoint endpoint = cleanup.register(MetricsEndpoint.start("127.0.0.1", 0, registry));

    assertThat(endpoint.url()).isEqualTo(URI.create("http://127.0.0.1:" + endpoint.port() + "/metrics"));
    HttpResponse<String> response = send(HttpRequest.newBuilder(endpoint.url()).GET());

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("Content-Type")).contains("text/plain; version=0.0.4; charset=utf-8");
    assertThat(response.body())
        .contains("# TYPE owlery_test_requests_total counter")
        .contains("owlery_test_requests_total{node=\"node-1\",role=\"coordinator\"} 3.0")
        .contains("jvm_memory_used_bytes{");
  }

  @Test
  void otherPathsAndMethodsAreRefused() throws Exception {
    PrometheusMeterRegistry registry = NodeMetrics.newRegistry("node-1", "coordinator");
    MetricsEndpoint endpoint = cleanup.register(MetricsEndpoint.start("127.0.0.1", 0, registry));

    HttpResponse<String> post = send(HttpRequest.newBuilder(endpoint.url()).POST(HttpRequest.BodyPublishers.noBody()));
    HttpResponse<String> elsewhere = send(HttpRequest.newBuilder(endpoint.url().resolve("/metricsx")).GET());

    assertThat(post.statusCode()).isEqualTo(405);
    assertThat(post.headers().firstValue("Allow")).contains("GET, HEAD");
    assertThat(elsewhere.statusCode()).isEqualTo(404);
  }
}
