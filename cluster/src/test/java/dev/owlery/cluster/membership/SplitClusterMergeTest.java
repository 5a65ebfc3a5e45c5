package dev.owlery.cluster.membership;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeResources;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A node that starts while the member it joins through is down forms a cluster of its own; the two
 * clusters merge within seconds and the node's registry record follows it, under its new member.
 */
class SplitClusterMergeTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void aNodeThatStartedBeforeItsSeedMergesIntoItsClusterWithItsRecord() {
    String name = LoopbackCluster.freshClusterName();
    List<Integer> ports = LoopbackCluster.freePorts(2);
    String seed = "127.0.0.1:" + ports.get(0);
    ClusterMember worker = cleanup.register(ClusterMember.start(
        MembershipConfig.of(name, "127.0.0.1", ports.get(1), List.of(seed, "127.0.0.1:" + ports.get(1)))));
    NodeRegistry workerRegistry = cleanup.register(new NodeRegistry(worker));
    workerRegistry.register(NodeRecord.starting("shard-0", worker.memberUuid(), NodeRole.SHARD_WORKER,
        "127.0.0.1:1", "", new NodeResources(1, 1)));
    assertThat(worker.members()).hasSize(1);

    ClusterMember coordinator = cleanup.register(ClusterMember.start(
        MembershipConfig.of(name, "127.0.0.1", ports.get(0), List.of(seed))));
    NodeRegistry coordinatorRegistry = cleanup.register(new NodeRegistry(coordinator));

    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
      assertThat(coordinator.members()).hasSize(2);
      assertThat(coordinatorRegistry.find("shard-0")).hasValueSatisfying(
          node -> assertThat(node.memberUuid()).isEqualTo(worker.memberUuid()));
    });
  }
}
