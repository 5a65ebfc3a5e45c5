package dev.owlery.engine.parallel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The in-process all-reduce: every rank gets the same sum; a broken group fails instead of hanging. */
class InProcessGroupTest {

  @Test
  void everyRankReceivesTheSumOfAllContributions() throws Exception {
    InProcessGroup group = new InProcessGroup(3, Duration.ofSeconds(10));
    ExecutorService threads = Executors.newFixedThreadPool(3);
    try {
      @SuppressWarnings("unchecked")
      Future<float[]>[] results = new Future[3];
      for (int r = 0; r < 3; r++) {
        int rank = r;
        results[r] = threads.submit(() -> {
          float[] x = {-1f, rank, 10f * rank, 0.5f, -2f};
          group.member(rank).allReduceSum(x, 1, 3); // elements 1..3 only
          group.member(rank).allReduceSum(x, 3, 1); // a second call reuses the buffers
          return x;
        });
      }
      for (Future<float[]> result : results) {
        assertThat(result.get(10, TimeUnit.SECONDS)).containsExactly(-1f, 3f, 30f, 4.5f, -2f);
      }
    } finally {
      threads.shutdownNow();
    }
  }

  @Test
  void anAbortedGroupFailsWaitingAndLaterCalls() throws Exception {
    InProcessGroup group = new InProcessGroup(2, Duration.ofSeconds(30));
    ExecutorService threads = Executors.newSingleThreadExecutor();
    try {
      Future<?> waiting = threads.submit(() -> group.member(0).allReduceSum(new float[1], 0, 1));
      group.abort();
      assertThatThrownBy(() -> waiting.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> group.member(1).allReduceSum(new float[1], 0, 1))
          .hasMessageContaining("rank 1").hasMessageContaining("aborted");
    } finally {
      threads.shutdownNow();
    }
  }
}
