package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The supervisor's wait before a restart doubles for each quick death, up to 30 s, per node. */
class RestartBackoffTest {

  @Test
  void quickDeathsDoubleTheWaitUpToTheMaximumAndALongLifeStartsOver() {
    RestartBackoff backoff = new RestartBackoff();
    Duration quick = Duration.ofSeconds(2);

    assertThat(backoff.next("shard-1", quick)).isEqualTo(Duration.ofMillis(500));
    assertThat(backoff.next("shard-1", quick)).isEqualTo(Duration.ofSeconds(1));
    assertThat(backoff.next("shard-1", quick)).isEqualTo(Duration.ofSeconds(2));
    assertThat(backoff.next("shard-0", quick)).isEqualTo(Duration.ofMillis(500)); // each node its own
    for (int i = 0; i < 20; i++) {
      backoff.next("shard-1", quick);
    }
    assertThat(backoff.next("shard-1", quick)).isEqualTo(Duration.ofSeconds(30));
    assertThat(backoff.numQuickRestarts("shard-1")).isEqualTo(24);

    assertThat(backoff.next("shard-1", Duration.ofMinutes(5))).isEqualTo(Duration.ofMillis(500));
    assertThat(backoff.numQuickRestarts("shard-1")).isEqualTo(1);
  }
}
