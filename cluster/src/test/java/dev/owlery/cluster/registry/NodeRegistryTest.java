package dev.owlery.cluster.registry;

import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class NodeRegistryTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private NodeRegistry registryOf(ClusterMember member) {
    return cleanup.register(new NodeRegistry(member));
  }

  private static NodeRecord node(String nodeId, ClusterMember member, NodeRole role) {
    return NodeRecord.starting(
        nodeId, member.memberUuid(), role, "127.0.0.1:1", "http://127.0.0.1:2/metrics", new NodeResources(2, 1L << 30));
  }

  private static List<String> nodeIds(NodeRegistry registry) {
    return registry.nodes().stream().map(NodeRecord::nodeId).toList();
  }

  @Test
  void everyMemberSeesEveryNodeAndATerminatedMembersNodeIsRemoved() {
    List<ClusterMember> members = LoopbackCluster.start(3, cleanup);
    List<NodeRegistry> registries = members.stream().map(this::registryOf).toList();
    registries.get(0).register(node("coordinator-0", members.get(0), NodeRole.COORDINATOR));
    registries.get(1).register(node("vision-0", members.get(1), NodeRole.VISION_WORKER));
    registries.get(2).register(node("shard-0", members.get(2), NodeRole.SHARD_WORKER));

    for (NodeRegistry registry : registries) {
      assertThat(nodeIds(registry)).containsExactly("coordinator-0", "shard-0", "vision-0");
      assertThat(registry.nodes(NodeRole.SHARD_WORKER)).extracting(NodeRecord::nodeId).containsExactly("shard-0");
    }

    // A crash: no deregistration, no graceful leave; failure detection must clean up.
    members.get(2).terminate();

    for (NodeRegistry registry : registries.subList(0, 2)) {
      await()
          .atMost(ofSeconds(10))
          .untilAsserted(() -> assertThat(nodeIds(registry)).containsExactly("coordinator-0", "vision-0"));
    }
  }

  @Test
  void aRecordTheMapLosesIsPutBackByItsOwnMember() {
    List<ClusterMember> members = LoopbackCluster.start(2, cleanup);
    NodeRegistry owner = registryOf(members.get(0));
    NodeRegistry other = registryOf(members.get(1));
    owner.register(node("vision-0", members.get(0), NodeRole.VISION_WORKER));
    NodeRecord ready = owner.setState("vision-0", NodeState.READY);

    // What a lost partition looks like to the survivors: the entry is simply gone.
    members.get(1).hazelcast().getMap(NodeRegistry.MAP_NAME).delete("vision-0");
    assertThat(other.find("vision-0")).isEmpty();

    await()
        .atMost(NodeRegistry.RECONCILE_INTERVAL.multipliedBy(5))
        .untilAsserted(() -> assertThat(other.find("vision-0")).contains(ready));

    // A node deregistered by its member stays gone.
    owner.deregister("vision-0");
    await()
        .during(NodeRegistry.RECONCILE_INTERVAL.multipliedBy(3))
        .atMost(NodeRegistry.RECONCILE_INTERVAL.multipliedBy(5))
        .until(() -> other.find("vision-0").isEmpty());
  }

  @Test
  void nodesOfSurvivingMembersOutliveTwoMembersCrashingTogether() {
    List<ClusterMember> members = LoopbackCluster.start(4, cleanup);
    List<NodeRegistry> registries = members.stream().map(this::registryOf).toList();
    List<String> surviving = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      for (int n = 0; n < 12; n++) {
        String nodeId = "shard-" + i + "-" + n;
        registries.get(i).register(node(nodeId, members.get(i), NodeRole.SHARD_WORKER));
        surviving.add(nodeId);
      }
    }
    registries.get(2).register(node("vision-2", members.get(2), NodeRole.VISION_WORKER));
    registries.get(3).register(node("vision-3", members.get(3), NodeRole.VISION_WORKER));
    await().atMost(ofSeconds(30)).until(() -> members.getFirst().hazelcast().getPartitionService().isClusterSafe());
    List<Integer> lostPartitions = new CopyOnWriteArrayList<>();
    members.getFirst().hazelcast().getMap(NodeRegistry.MAP_NAME)
        .addPartitionLostListener(event -> lostPartitions.add(event.getPartitionId()));

    // One backup per partition: some of the 23 partitions had both copies on members 2 and 3.
    members.get(2).terminate();
    members.get(3).terminate();

    await().atMost(ofSeconds(20)).untilAsserted(() -> {
      assertThat(lostPartitions).isNotEmpty();
      for (NodeRegistry registry : registries.subList(0, 2)) {
        assertThat(nodeIds(registry)).containsExactlyInAnyOrderElementsOf(surviving);
      }
    });
  }

  @Test
  void listenersSeeRegistrationUpdatesAndTheLeaveOfAMember() {
    List<ClusterMember> members = LoopbackCluster.start(2, cleanup);
    NodeRegistry watcher = registryOf(members.get(0));
    NodeRegistry shardSide = registryOf(members.get(1));
    List<String> events = new CopyOnWriteArrayList<>();
    watcher.addListener(
        new NodeRegistryListener() {
          @Override
          public void nodeAdded(NodeRecord node) {
            events.add("added " + node.nodeId() + " " + node.state());
          }

          @Override
          public void nodeUpdated(NodeRecord previous, NodeRecord current) {
            events.add("updated " + current.nodeId() + " " + previous.state() + "->" + current.state() + " "
                + current.assignment());
          }

          @Override
          public void nodeRemoved(NodeRecord node) {
            events.add("removed " + node.nodeId());
          }
        });

    shardSide.register(node("shard-1", members.get(1), NodeRole.SHARD_WORKER));
    shardSide.assign("shard-1", new ShardAssignment("group-a", 1, 2));
    NodeRecord ready = shardSide.setState("shard-1", NodeState.READY);
    assertThat(ready.assignment()).isEqualTo(new ShardAssignment("group-a", 1, 2));
    assertThat(watcher.find("shard-1")).contains(ready);
    assertThat(ready.toProto().getRank()).isEqualTo(1);
    assertThat(ready.toProto().getGroupId()).isEqualTo("group-a");

    // A graceful leave without deregistering: the surviving member removes the record.
    members.get(1).close();

    await()
        .atMost(ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(events)
                    .containsExactly(
                        "added shard-1 STARTING",
                        "updated shard-1 STARTING->STARTING ShardAssignment[groupId=group-a, rank=1, worldSize=2]",
                        "updated shard-1 STARTING->READY ShardAssignment[groupId=group-a, rank=1, worldSize=2]",
                        "removed shard-1"));
    assertThat(watcher.nodes()).isEmpty();
  }

  /**
   * The survivors remove a departed member's records once, on its departure; a placement still
   * writing to those records at that moment (as the coordinator vacates a dead shard's rank) made a
   * conditional removal fail and the dead node stayed registered for good.
   */
  @Test
  void aDepartedMembersNodesAreRemovedWhileAnotherMemberKeepsUpdatingThem() throws InterruptedException {
    List<ClusterMember> members = LoopbackCluster.start(2, cleanup);
    NodeRegistry survivor = registryOf(members.get(0));
    NodeRegistry departing = registryOf(members.get(1));
    List<String> departingIds = new ArrayList<>();
    for (int n = 0; n < 24; n++) {
      departingIds.add("shard-" + n);
      departing.register(node("shard-" + n, members.get(1), NodeRole.SHARD_WORKER));
    }
    survivor.register(node("coordinator-0", members.get(0), NodeRole.COORDINATOR));
    AtomicBoolean updating = new AtomicBoolean(true);
    AtomicInteger numUpdates = new AtomicInteger();
    List<Thread> updaters = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      updaters.add(Thread.ofPlatform().start(() -> {
        while (updating.get()) {
          for (String nodeId : departingIds) {
            try {
              survivor.update(nodeId, node -> node.withState(
                  node.state() == NodeState.READY ? NodeState.DRAINING : NodeState.READY));
              numUpdates.incrementAndGet();
            } catch (IllegalStateException removed) {
              // Gone: what the test waits for.
            }
          }
        }
      }));
    }
    await().atMost(ofSeconds(10)).until(() -> numUpdates.get() >= 4 * departingIds.size());

    members.get(1).close();

    try {
      await().atMost(ofSeconds(10)).untilAsserted(() -> assertThat(nodeIds(survivor)).containsExactly("coordinator-0"));
    } finally {
      updating.set(false);
      for (Thread updater : updaters) {
        updater.join();
      }
    }
  }

  @Test
  void updatingAnUnknownNodeFailsNamingIt() {
    ClusterMember member = LoopbackCluster.start(1, cleanup).getFirst();
    NodeRegistry registry = registryOf(member);
    registry.register(node("coordinator-0", member, NodeRole.COORDINATOR));

    assertThatThrownBy(() -> registry.setState("shard-9", NodeState.READY))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("node shard-9 is not registered; known nodes: [coordinator-0]");
    assertThatThrownBy(() -> registry.assign("coordinator-0", new ShardAssignment("g", 0, 1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("only shard workers are assigned to groups");
  }

  @Test
  void assignmentRejectsARankOutsideTheGroup() {
    assertThatThrownBy(() -> new ShardAssignment("group-a", 2, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("rank must be in 0..1. Given: 2");
  }
}
