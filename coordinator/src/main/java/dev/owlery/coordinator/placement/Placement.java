package dev.owlery.coordinator.placement;

import com.hazelcast.core.HazelcastInstanceNotActiveException;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRegistryListener;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.registry.ShardAssignment;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The placement authority (DESIGN.md §2): watches the registry's shard workers and forms groups of
 * {@code worldSize} from the free ones (ranks by node id), loads and health-checks them ({@link
 * GroupFormation}) and publishes them READY, up to {@link PlacementConfig#maxGroups()}; the shards
 * left free are standbys. A member that leaves, restarts, drains or is reported
 * lost by the scheduler takes its group DOWN and its rank becomes vacant; as soon as enough free
 * shards (standbys, or the lost one back under a new member) are registered the group is re-formed under the same id, every rank reloaded, and serving
 * resumes. Shards that failed are passed over for {@link PlacementConfig#quarantine()} while others
 * are free.
 *
 * <p>Threading: every change runs on one placement thread (registry events and reports are queued
 * to it); readers see immutable snapshots published through volatile fields.
 */
public final class Placement implements GroupDirectory, AutoCloseable {

  private static final Logger LOG = Logger.getLogger(Placement.class.getName());
  /** Safety net: the registry is re-read this often even without events (and quarantines expire). */
  private static final long RECONCILE_PERIOD_MS = 1000;

  private record Quarantine(UUID memberUuid, long untilNanos) {}

  private final PlacementConfig config;
  private final NodeRegistry registry;
  private final NodeChannels channels;
  private final GroupFormation formation;
  private final ScheduledExecutorService owner =
      Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("owlery-placement").daemon().factory());
  private final AtomicBoolean reconcileQueued = new AtomicBoolean();
  private UUID listenerId;

  // Confined to the placement thread.
  private final Map<String, ShardGroup> groups = new TreeMap<>();
  private final Map<String, Quarantine> quarantined = new HashMap<>();
  private int nextGroupNumber;

  private volatile List<ServingGroup> serving = List.of();
  private volatile List<GroupStatus> statuses = List.of();

  /**
   * @param vocabSize the model's vocabulary, which the ranks' slices must tile
   * @param maxPositions the model's context, for sizing the KV pool
   * @param kvBytesPerToken one position's keys and values on one shard of a group
   */
  public Placement(PlacementConfig config, int vocabSize, int maxPositions, long kvBytesPerToken,
      NodeRegistry registry, NodeChannels channels) {
    this.config = config;
    this.registry = registry;
    this.channels = channels;
    this.formation = new GroupFormation(config, vocabSize, maxPositions, kvBytesPerToken,
        address -> ShardWorkerGrpc.newStub(channels.channel(address)), UUID.randomUUID().toString());
  }

  /** Starts watching the registry and forming groups. */
  public Placement start() {
    listenerId = registry.addListener(new NodeRegistryListener() {
      @Override
      public void nodeAdded(NodeRecord node) {
        requestReconcile(node);
      }

      @Override
      public void nodeUpdated(NodeRecord previous, NodeRecord current) {
        requestReconcile(current);
      }

      @Override
      public void nodeRemoved(NodeRecord node) {
        requestReconcile(node);
      }
    });
    owner.scheduleWithFixedDelay(this::reconcile, 0, RECONCILE_PERIOD_MS, TimeUnit.MILLISECONDS);
    return this;
  }

  public PlacementConfig config() {
    return config;
  }

  @Override
  public List<ServingGroup> servingGroups() {
    return serving;
  }

  @Override
  public List<GroupStatus> groupStatuses() {
    return statuses;
  }

  @Override
  public void reportLost(ServingGroup group, List<String> lostNodeIds, String reason) {
    group.lost().complete(reason); // at once: the scheduler must not step this formation again
    execute(() -> {
      ShardGroup current = groups.get(group.groupId());
      if (current == null || current.state != GroupState.READY || current.formation != group.formation()) {
        return; // already DOWN or re-formed since
      }
      for (String nodeId : lostNodeIds) {
        int rank = current.rankOf(nodeId);
        if (rank >= 0) {
          quarantine(current.members[rank]);
          vacate(current, rank, reason);
        }
      }
      publish();
      reconcile();
    });
  }

  /** Queues a reconcile for a change to a shard worker's record (null: a removal whose record the event lacks). */
  private void requestReconcile(NodeRecord node) {
    if ((node == null || node.role() == NodeRole.SHARD_WORKER) && reconcileQueued.compareAndSet(false, true)) {
      execute(this::reconcile);
    }
  }

  private void execute(Runnable task) {
    try {
      owner.execute(task);
    } catch (RejectedExecutionException e) {
      // Closing: nothing is placed any more.
    }
  }

  /** Brings the groups in line with the registry; runs on the placement thread. */
  private void reconcile() {
    reconcileQueued.set(false);
    Map<String, NodeRecord> registered = new LinkedHashMap<>();
    try {
      for (NodeRecord node : registry.nodes(NodeRole.SHARD_WORKER)) {
        registered.put(node.nodeId(), node);
      }
      dropDepartedMembers(registered);
      List<NodeRecord> free = freeShards(registered);
      for (ShardGroup group : groups.values()) {
        if (group.state == GroupState.DOWN && group.numVacancies() > 0 && free.size() >= group.numVacancies()) {
          group.fillVacancies(free);
          form(group);
        }
      }
      while (free.size() >= config.worldSize() && (config.maxGroups() == 0 || groups.size() < config.maxGroups())) {
        ShardGroup group = new ShardGroup("group-" + nextGroupNumber++, config.worldSize());
        groups.put(group.groupId, group);
        group.fillVacancies(free);
        form(group);
      }
    } catch (HazelcastInstanceNotActiveException e) {
      return; // this member is shutting down
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    } catch (RuntimeException e) {
      // A registry call failed; the next period tries again.
      LOG.log(Level.WARNING, "placement could not reconcile with the registry", e);
    }
    publish();
  }

  /** Vacates the ranks whose node left, restarted (new member or address) or drains. */
  private void dropDepartedMembers(Map<String, NodeRecord> registered) {
    for (ShardGroup group : groups.values()) {
      for (int r = 0; r < group.worldSize(); r++) {
        NodeRecord member = group.members[r];
        if (member == null) {
          continue;
        }
        NodeRecord now = registered.get(member.nodeId());
        String who = GroupFormation.describe(member, r, group.groupId);
        if (now == null) {
          channels.close(member.grpcAddress());
          vacate(group, r, "shard worker " + who + " left the cluster");
        } else if (!now.memberUuid().equals(member.memberUuid()) || !now.grpcAddress().equals(member.grpcAddress())) {
          vacate(group, r, "shard worker " + who + " restarted");
        } else if (now.state() == NodeState.DRAINING) {
          vacate(group, r, "shard worker " + who + " is draining");
        }
      }
    }
  }

  /** Registered shards in no group, not draining and not in quarantine, sorted by node id. */
  private List<NodeRecord> freeShards(Map<String, NodeRecord> registered) {
    long now = System.nanoTime();
    quarantined.entrySet().removeIf(entry -> {
      NodeRecord node = registered.get(entry.getKey());
      return node == null || !node.memberUuid().equals(entry.getValue().memberUuid())
          || now - entry.getValue().untilNanos() >= 0;
    });
    List<NodeRecord> free = new ArrayList<>();
    for (NodeRecord node : registered.values()) {
      boolean placed = groups.values().stream().anyMatch(group -> group.rankOf(node.nodeId()) >= 0);
      if (!placed && node.state() != NodeState.DRAINING && !quarantined.containsKey(node.nodeId())) {
        free.add(node);
      }
    }
    return free;
  }

  private void form(ShardGroup group) throws InterruptedException {
    group.state = GroupState.FORMING;
    group.reason = "";
    group.formation++;
    publish();
    List<NodeRecord> members = List.of(group.members);
    for (int r = 0; r < members.size(); r++) {
      assign(members.get(r).nodeId(), new ShardAssignment(group.groupId, r, members.size()));
    }
    GroupFormation.Outcome outcome = formation.form(group.groupId, members, group.stepIds.incrementAndGet());
    if (outcome.failure() != null) {
      group.state = GroupState.DOWN;
      for (int r : outcome.failure().blamedRanks()) {
        quarantine(group.members[r]);
        vacate(group, r, outcome.failure().reason());
      }
      group.reason = outcome.failure().reason();
      LOG.warning(() -> "shard group " + group.groupId + " is DOWN: " + group.reason);
      return;
    }
    group.state = GroupState.READY;
    group.serving = new ServingGroup(group.groupId, group.formation, outcome.ranks(), outcome.numKvBlocks(),
        group.stepIds, new CompletableFuture<>());
    LOG.info(() -> "shard group " + group.groupId + " is READY: " + outcome.ranks().stream().map(ShardRank::nodeId).toList());
  }

  /** Empties {@code rank}; a group that was FORMING or READY goes DOWN with {@code reason}. */
  private void vacate(ShardGroup group, int rank, String reason) {
    NodeRecord member = group.members[rank];
    group.members[rank] = null;
    if (group.state != GroupState.DOWN) {
      group.state = GroupState.DOWN;
      group.reason = reason;
      LOG.warning(() -> "shard group " + group.groupId + " is DOWN: " + reason);
    }
    if (group.serving != null) {
      group.serving.lost().complete(reason);
      group.serving = null;
    }
    if (member != null) {
      assign(member.nodeId(), null);
    }
  }

  private void quarantine(NodeRecord node) {
    quarantined.put(node.nodeId(), new Quarantine(node.memberUuid(), System.nanoTime() + config.quarantine().toNanos()));
  }

  /** Publishes a placement in the registry; a node that is gone has nothing to update. */
  private void assign(String nodeId, ShardAssignment assignment) {
    try {
      registry.assign(nodeId, assignment);
    } catch (IllegalStateException e) {
      // Deregistered meanwhile; the next reconcile vacates its rank.
    }
  }

  private void publish() {
    List<ServingGroup> ready = new ArrayList<>();
    List<GroupStatus> all = new ArrayList<>();
    for (ShardGroup group : groups.values()) {
      all.add(group.status());
      if (group.serving != null) {
        ready.add(group.serving);
      }
    }
    serving = List.copyOf(ready);
    statuses = List.copyOf(all);
  }

  /** Stops placing (groups stay loaded on their shards); waits up to 5 s for a formation in progress. */
  @Override
  public void close() {
    if (listenerId != null) {
      try {
        registry.removeListener(listenerId);
      } catch (HazelcastInstanceNotActiveException e) {
        // The member is already down.
      }
    }
    owner.shutdownNow();
    try {
      owner.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
