package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Goodput, TPOT and percentiles against hand-made latencies, with vLLM's definitions. */
class GoodputTest {

  private static final long MS = 1_000_000;

  private static RequestResult request(int tokens, long ttftMs, long e2eMs) {
    return new RequestResult(0, 0, 10, 0, tokens, ttftMs * MS, new long[0], e2eMs * MS, Status.Code.OK, "");
  }

  @Test
  void goodRequestsSucceedWithinEveryBound() {
    Slo slo = Slo.parse("ttft=100ms,tpot=10ms");
    List<RequestResult> requests = List.of(
        request(11, 100, 200),   // ttft 100 (= bound), tpot (200-100)/10 = 10 (= bound): good
        request(11, 101, 150),   // ttft over: bad
        request(11, 50, 161),    // tpot 11.1: bad
        request(1, 80, 500),     // one token: tpot 0, good
        new RequestResult(0, 0, 0, 0, 0, -1, new long[0], 5 * MS, Status.Code.UNAVAILABLE, "down"));  // failed: bad
    LevelResult level = LevelResult.of(new Load.Rate(2, 1), requests, 2_000 * MS);

    assertThat(requests.get(0).tpotNanos()).isEqualTo(10 * MS);
    assertThat(requests.get(3).tpotNanos()).isZero();
    assertThat(level.numMeeting(slo)).isEqualTo(2);
    assertThat(level.goodput(slo)).isEqualTo(1.0);
    assertThat(level.attainment(slo)).isEqualTo(0.4);
    assertThat(level.requestThroughput()).isEqualTo(2.0);
    // TPOT covers successful requests with two tokens or more: 10, 4.9, 11.1 ms.
    assertThat(level.tpot().count()).isEqualTo(3);
    assertThat(level.tpot().maxMs()).isEqualTo(11.1);
    assertThat(Slo.NONE.isMetBy(requests.get(1))).isTrue();
  }

  @Test
  void percentilesInterpolateBetweenRanksAsNumpyDoes() {
    Latency latency = Latency.of(new long[] {40 * MS, 10 * MS, 20 * MS, 30 * MS});

    // numpy.percentile([10, 20, 30, 40], [50, 90, 95, 99]) = 25, 37, 38.5, 39.7
    assertThat(latency.p50Ms()).isEqualTo(25.0);
    assertThat(latency.p90Ms()).isCloseTo(37.0, org.assertj.core.data.Offset.offset(1e-9));
    assertThat(latency.p95Ms()).isCloseTo(38.5, org.assertj.core.data.Offset.offset(1e-9));
    assertThat(latency.p99Ms()).isCloseTo(39.7, org.assertj.core.data.Offset.offset(1e-9));
    assertThat(latency.meanMs()).isEqualTo(25.0);
    assertThat(latency.maxMs()).isEqualTo(40.0);
  }

  @Test
  void sloParsesUnitsAndRejectsUnknownMetrics() {
    assertThat(Slo.parse("ttft=0.5s,e2e=2000ms").bounds())
        .containsExactly(java.util.Map.entry("ttft", Duration.ofMillis(500)), java.util.Map.entry("e2e", Duration.ofSeconds(2)));
    assertThatThrownBy(() -> Slo.parse("itl=5ms")).hasMessage("--slo takes METRIC=DURATION pairs with METRIC ttft, "
        + "tpot or e2e, e.g. ttft=500ms,tpot=50ms; got 'itl=5ms'");
    assertThatThrownBy(() -> Slo.parse("ttft=fast")).hasMessage("--slo ttft must be a duration such as 500ms, 30s, "
        + "2m or PT30S, got 'fast'");
  }
}
