package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Scrapes of real HTTP endpoints serving Prometheus text, combined into a level's server-side context. */
class ServerMetricsTest {

  private MetricsEndpoint endpoint;

  @BeforeEach
  void start() throws IOException {
    endpoint = new MetricsEndpoint();
  }

  @AfterEach
  void stop() {
    endpoint.close();
  }

  @Test
  void theCoordinatorsFiguresWinAndCountersAreDifferenced() {
    ServerContext context;
    try (ServerMetrics metrics = new ServerMetrics(List.of(endpoint.url("/coordinator"), endpoint.url("/shard"),
        endpoint.url("/broken")), System::nanoTime)) {
      context = metrics.start().stop(System.nanoTime());
    }

    int scrapes = endpoint.coordinatorScrapes.get();
    assertThat(context.samples()).hasSize(scrapes).hasSizeGreaterThanOrEqualTo(2);
    ServerSample first = context.samples().getFirst();
    // The coordinator's KV gauges cover every group: the shard's rank is not added to them.
    assertThat(first.kvBlocksUsed()).isEqualTo(MetricsEndpoint.COORDINATOR_KV_USED);
    assertThat(first.kvBlocksFree()).isEqualTo(MetricsEndpoint.COORDINATOR_KV_FREE);
    assertThat(first.kvUsage()).isEqualTo(0.25);
    assertThat(first.waiting()).isEqualTo(2.0);
    assertThat(first.running()).isEqualTo(4.0);
    assertThat(first.numAnswered()).isEqualTo(2);
    assertThat(context.kvUsageMean()).isEqualTo(0.25);
    assertThat(context.waitingMax()).isEqualTo(2.0);
    // One preemption and two steps of three sequences between consecutive scrapes.
    assertThat(context.preemptions()).isEqualTo(scrapes - 1);
    assertThat(context.meanBatchSize()).isEqualTo(3.0);
    // Two steps between scrapes whose shares add up to 0.25.
    assertThat(context.coordinatorShareMean()).isEqualTo(0.125);
    assertThat(context.numFailedScrapes()).isEqualTo(scrapes);
    assertThat(context.firstFailure()).isEqualTo(endpoint.url("/broken") + ": answered HTTP 503");
  }

  @Test
  void withoutACoordinatorKvBlocksAreSummedOverRanksAndSchedulerFiguresAreUnknown() {
    ServerContext context;
    try (ServerMetrics metrics = new ServerMetrics(List.of(endpoint.url("/shard"), endpoint.url("/shard")),
        System::nanoTime)) {
      context = metrics.start().stop(System.nanoTime());
    }

    ServerSample sample = context.samples().getFirst();
    assertThat(sample.kvBlocksUsed()).isEqualTo(2 * MetricsEndpoint.SHARD_KV_USED);
    assertThat(sample.kvUsage()).isEqualTo(0.75);
    assertThat(sample.waiting()).isNaN();
    assertThat(context.preemptions()).isNaN();
    assertThat(context.meanBatchSize()).isNaN();
    assertThat(context.coordinatorShareMean()).isNaN();
    assertThat(context.numFailedScrapes()).isZero();
  }

  @Test
  void aCounterThatFallsRestartedFromZero() {
    // Preemptions 5, 7, then the coordinator restarts: 1, 3.
    ServerContext context = new ServerContext(List.of("u"), List.of(preemptions(5), preemptions(7), preemptions(1),
        preemptions(Double.NaN), preemptions(3)), 0, "");

    assertThat(context.preemptions()).isEqualTo(2 + 1 + 2);
  }

  private static ServerSample preemptions(double total) {
    return new ServerSample(0, 1, 1, 0, 0, total, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 1);
  }

  @Test
  void metricsUrlsMustBeHttp() {
    assertThatThrownBy(() -> new ServerMetrics(List.of("localhost:9400/metrics"), System::nanoTime))
        .hasMessage("--metrics-url must be an http(s) URL, got 'localhost:9400/metrics'");
  }
}
