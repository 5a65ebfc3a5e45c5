package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The live progress line: what it says, and that it redraws in place at most every 200 ms. */
class ProgressTest {

  private static final long MS = 1_000_000;

  private static RequestResult request(long ttftMs, Status.Code code) {
    return new RequestResult(0, 0, 1, 0, 2, ttftMs * MS, new long[] {MS}, (ttftMs + 1) * MS, code, "");
  }

  @Test
  void lineCountsRequestsRateErrorsAndMedianTtft() {
    AtomicLong clock = new AtomicLong();
    StringWriter terminal = new StringWriter();
    Progress progress = new Progress(new PrintWriter(terminal), "rate 4/s", 10, clock::get);

    clock.set(1_000 * MS);
    progress.onDone(request(10, Status.Code.OK));
    clock.addAndGet(10 * MS);
    progress.onDone(request(30, Status.Code.OK));
    clock.addAndGet(10 * MS);
    progress.onDone(request(20, Status.Code.UNAVAILABLE));
    clock.set(2_000 * MS);

    assertThat(progress.line(clock.get())).isEqualTo("rate 4/s: 3/10 requests, 1.5 req/s, 1 errors, ttft p50 20.0 ms");
    // Drawn for the first request; the next two came within 200 ms of it.
    assertThat(terminal.toString()).isEqualTo("\rrate 4/s: 1/10 requests, 1.0 req/s, 0 errors, ttft p50 10.0 ms");
  }

  @Test
  void aLevelBoundByDurationShowsNoTotal() {
    Progress progress = new Progress(new PrintWriter(new StringWriter()), "concurrency 2", Long.MAX_VALUE, () -> 0);

    progress.onDone(request(5, Status.Code.OK));

    assertThat(progress.line(2_000 * MS)).isEqualTo("concurrency 2: 1 requests, 0.5 req/s, 0 errors, ttft p50 5.0 ms");
  }
}
