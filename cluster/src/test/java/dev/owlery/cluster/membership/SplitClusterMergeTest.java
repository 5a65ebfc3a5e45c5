package dev.owlery.cluster.membership;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class SplitClusterMergeTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void aMemberThatStartedBeforeItsSeedMergesWithItWithinSeconds() {
    String name = LoopbackCluster.freshClusterName();
    List<Integer> ports = LoopbackCluster.freePorts(2);
    String seed = "127.0.0.1:" + ports.get(0);
    String early = "127.0.0.1:" + ports.get(1);
    // The worker starts while the seed is down: it forms a cluster of its own.
    ClusterMember worker = cleanup.register(ClusterMember.start(
        MembershipConfig.of(name, "127.0.0.1", ports.get(1), List.of(seed, early))));
    assertThat(worker.members()).hasSize(1);

    ClusterMember coordinator = cleanup.register(ClusterMember.start(
        MembershipConfig.of(name, "127.0.0.1", ports.get(0), List.of(seed))));

    await().atMost(Duration.ofSeconds(25)).pollInterval(Duration.ofMillis(200))
        .until(() -> coordinator.members().size() == 2 && worker.isRunning() && worker.members().size() == 2);
  }
}
