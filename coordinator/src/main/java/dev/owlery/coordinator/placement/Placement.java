package dev.owlery.coordinator.placement;

import com.hazelcast.cluster.Member;
import com.hazelcast.core.HazelcastInstanceNotActiveException;
import com.hazelcast.map.IMap;
import com.hazelcast.topic.ITopic;
import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRegistryListener;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.registry.ShardAssignment;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * The placement authority (DESIGN.md §2), active in the coordinator that leads placement ({@link
 * PlacementLeadership}; in the others it places nothing): watches the registry's shard workers and forms groups of
 * {@code worldSize} from the free ones (ranks by node id), loads and health-checks them ({@link
 * GroupFormation}) and publishes them READY, up to {@link PlacementConfig#maxGroups()}; the shards
 * left free are standbys. A member that leaves, restarts, drains or is reported
 * lost by the scheduler takes its group DOWN and its rank becomes vacant; as soon as enough free
 * shards (standbys, or the lost one back under a new member) are registered the group is re-formed under the same id, every rank reloaded, and serving
 * resumes. Shards that failed are passed over for {@link PlacementConfig#quarantine()} while others
 * are free.
 *
 * <p>Each formation is made for one coordinator, its driver (the READY coordinator driving the
 * fewest groups), and published with the leader's epoch to every coordinator ({@link
 * PublishedGroup}, read by {@link DrivenGroups}); a group whose driver left is re-formed for
 * another. A new leader takes the published groups over as they are: those whose driver is alive
 * keep serving untouched. Every formation reloads its ranks (the LoadSlice's placement id names the
 * formation), so a new driver never meets its predecessor's step ids or sequences.
 *
 * <p>Threading: every change runs on one placement thread (registry events and reports are queued
 * to it); readers see immutable snapshots published through volatile fields.
 */
public final class Placement implements AutoCloseable {

  private static final Logger LOG = Logger.getLogger(Placement.class.getName());
  /** Safety net: the registry is re-read this often even without events (and quarantines expire). */
  private static final long RECONCILE_PERIOD_MS = 1000;

  private record Quarantine(UUID memberUuid, long untilNanos) {}

  private final PlacementConfig config;
  private final ClusterMember member;
  private final NodeRegistry registry;
  private final NodeChannels channels;
  private final PlacementLeadership leadership;
  private final IMap<String, PublishedGroup> published;
  private final ITopic<DrivenGroups.LostReport> lostReports;
  private final GroupFormation formation;
  /** This coordinator run's id; with a formation's number, the LoadSlice's placement id. */
  private final String runId = UUID.randomUUID().toString();
  private final ScheduledExecutorService owner =
      Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("owlery-placement").daemon().factory());
  private final AtomicBoolean reconcileQueued = new AtomicBoolean();
  private UUID listenerId;
  private UUID lostListenerId;

  // Confined to the placement thread.
  private final Map<String, ShardGroup> groups = new TreeMap<>();
  private final Map<String, Quarantine> quarantined = new HashMap<>();
  private int nextGroupNumber;
  /** The epoch this coordinator leads under, -1 while it does not lead. */
  private long ledEpoch = -1;
  private final Map<String, PublishedGroup> lastPublished = new HashMap<>();

  /**
   * @param vocabSize the model's vocabulary, which the ranks' slices must tile
   * @param maxPositions the model's context, for sizing the KV pool
   * @param kvBytesPerToken one position's keys and values on one shard of a group
   * @param model the served model's decoder and its folder on this machine, for the memory plans of
   *     shards that serve from a device
   */
  public Placement(PlacementConfig config, int vocabSize, int maxPositions, long kvBytesPerToken, LlamaConfig model,
      Path modelDir, ClusterMember member, NodeRegistry registry, NodeChannels channels,
      PlacementLeadership leadership) {
    this.config = config;
    this.member = member;
    this.registry = registry;
    this.channels = channels;
    this.leadership = leadership;
    this.published = member.hazelcast().getMap(DrivenGroups.MAP_NAME);
    this.lostReports = member.hazelcast().getTopic(DrivenGroups.LOST_TOPIC);
    this.formation = new GroupFormation(config, vocabSize, maxPositions, kvBytesPerToken,
        new DeviceKvSizing(model, modelDir, config.maxNumTokens(), config.blockSizeTokens()),
        address -> ShardWorkerGrpc.newStub(channels.channel(address)));
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
    lostListenerId = lostReports.addMessageListener(message -> {
      DrivenGroups.LostReport report = message.getMessageObject();
      execute(() -> lost(report));
    });
    owner.scheduleWithFixedDelay(this::reconcile, 0, RECONCILE_PERIOD_MS, TimeUnit.MILLISECONDS);
    return this;
  }

  /** Queues a reconcile now (the leader changed). */
  public void leadershipChanged() {
    requestReconcile(null);
  }

  /** A driver's report that nodes of a formation failed a step: they are passed over and their ranks vacated. */
  private void lost(DrivenGroups.LostReport report) {
    ShardGroup current = groups.get(report.groupId());
    if (ledEpoch < 0 || current == null || current.state != GroupState.READY || current.formation != report.formation()) {
      return; // not leading, or already DOWN or re-formed since
    }
    for (String nodeId : report.nodeIds()) {
      int rank = current.rankOf(nodeId);
      if (rank >= 0) {
        quarantine(current.members[rank]);
        vacate(current, rank, report.reason());
      }
    }
    publish();
    reconcile();
  }

  /** Queues a reconcile for a change to a node's record (null: a removal whose record the event lacks). */
  private void requestReconcile(NodeRecord node) {
    if ((node == null || node.role() != NodeRole.VISION_WORKER) && reconcileQueued.compareAndSet(false, true)) {
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

  /** Brings the groups in line with the registry while this coordinator leads; runs on the placement thread. */
  private void reconcile() {
    reconcileQueued.set(false);
    Map<String, NodeRecord> registered = new LinkedHashMap<>();
    try {
      long epoch = leadership.epochIfLeader();
      if (epoch != ledEpoch) {
        groups.clear();
        quarantined.clear();
        lastPublished.clear();
        if (epoch >= 0) {
          takeOver(epoch); // a registry failure here leaves ledEpoch as it was: the next reconcile tries again
        }
        ledEpoch = epoch;
      }
      if (epoch < 0) {
        return;
      }
      for (NodeRecord node : registry.nodes(NodeRole.SHARD_WORKER)) {
        registered.put(node.nodeId(), node);
      }
      dropDepartedMembers(registered);
      List<String> drivers = liveCoordinators();
      dropDepartedDrivers();
      rebalance(drivers);
      List<NodeRecord> free = freeShards(registered);
      for (ShardGroup group : groups.values()) {
        if (group.state == GroupState.DOWN && free.size() >= group.numVacancies() && !drivers.isEmpty()) {
          group.fillVacancies(free);
          form(group, drivers);
        }
      }
      while (free.size() >= config.worldSize() && (config.maxGroups() == 0 || groups.size() < config.maxGroups())
          && !drivers.isEmpty()) {
        ShardGroup group = new ShardGroup("group-" + nextGroupNumber++, config.worldSize());
        groups.put(group.groupId, group);
        group.fillVacancies(free);
        form(group, drivers);
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

  /**
   * Takes over the groups the previous leader published: members still registered keep their
   * ranks (the others' ranks are vacant), a READY group stays READY with its driver (the next steps
   * of this reconcile re-form it if that driver is gone), and group numbers continue.
   */
  private void takeOver(long epoch) {
    Map<String, NodeRecord> shards = new HashMap<>();
    registry.nodes(NodeRole.SHARD_WORKER).forEach(node -> shards.put(node.nodeId(), node));
    for (PublishedGroup previous : published.values()) {
      ShardGroup group = new ShardGroup(previous.groupId(), previous.nodeIds().size());
      for (int r = 0; r < group.worldSize(); r++) {
        group.members[r] = shards.get(previous.nodeIds().get(r));
      }
      group.state = previous.state() == GroupState.FORMING ? GroupState.DOWN : previous.state();
      group.reason = previous.state() == GroupState.FORMING ? "its formation was cut short by a change of placement leader"
          : previous.reason();
      group.formation = previous.formation();
      group.driver = previous.driverNodeId();
      group.ranks = previous.ranks();
      group.numKvBlocks = previous.numKvBlocks();
      group.healthStepId = previous.healthStepId();
      group.stepIds.set(previous.healthStepId());
      groups.put(group.groupId, group);
      if (previous.groupId().startsWith("group-")) {
        try {
          nextGroupNumber = Math.max(nextGroupNumber, Integer.parseInt(previous.groupId().substring(6)) + 1);
        } catch (NumberFormatException e) {
          // Not one of ours; numbering is unaffected.
        }
      }
    }
    LOG.info(() -> "placement leader (epoch " + epoch + ") took over groups " + groups.keySet());
  }

  /** READY coordinators whose member is in the cluster, sorted by node id: who may drive a group. */
  private List<String> liveCoordinators() {
    Set<UUID> alive = member.members().stream().map(Member::getUuid).collect(Collectors.toSet());
    return registry.nodes(NodeRole.COORDINATOR).stream()
        .filter(node -> node.state() == NodeState.READY && alive.contains(node.memberUuid()))
        .map(NodeRecord::nodeId).toList();
  }

  /** Takes DOWN the groups whose driver is no longer a live coordinator (their members stay, to re-form at once). */
  private void dropDepartedDrivers() {
    Set<UUID> alive = member.members().stream().map(Member::getUuid).collect(Collectors.toSet());
    Set<String> present = registry.nodes(NodeRole.COORDINATOR).stream()
        .filter(node -> alive.contains(node.memberUuid())).map(NodeRecord::nodeId).collect(Collectors.toSet());
    for (ShardGroup group : groups.values()) {
      if (group.state == GroupState.READY && !present.contains(group.driver)) {
        group.state = GroupState.DOWN;
        group.reason = "coordinator " + group.driver + ", which drove the group, left the cluster";
        LOG.warning(() -> "shard group " + group.groupId + " is DOWN: " + group.reason);
      }
    }
  }

  /**
   * Gives a coordinator that drives no group one of a coordinator that drives two or more (taken DOWN
   * here, re-formed for the idle one next): the donor hands that group's sequences to the groups it
   * keeps, so nothing waits on a group it no longer drives.
   */
  private void rebalance(List<String> drivers) {
    while (true) {
      Map<String, List<ShardGroup>> driven = new HashMap<>();
      drivers.forEach(driver -> driven.put(driver, new ArrayList<>()));
      for (ShardGroup group : groups.values()) {
        if (group.state == GroupState.READY && driven.containsKey(group.driver)) {
          driven.get(group.driver).add(group);
        }
      }
      String idle = drivers.stream().filter(driver -> driven.get(driver).isEmpty()).findFirst().orElse(null);
      List<ShardGroup> busiest = driven.values().stream().max(Comparator.comparingInt(List::size)).orElse(List.of());
      if (idle == null || busiest.size() < 2) {
        return;
      }
      ShardGroup moved = busiest.getLast();
      moved.state = GroupState.DOWN;
      moved.reason = "moved from coordinator " + moved.driver + " to coordinator " + idle + ", which drove no group";
      moved.driver = idle;
      LOG.info(() -> "shard group " + moved.groupId + " is " + moved.reason);
    }
  }

  /**
   * The driver for {@code forming}: the live coordinator driving the fewest other READY or FORMING
   * groups; a tie keeps the one it had (see {@link #rebalance}), else goes to the lowest node id.
   */
  private String leastLoadedDriver(List<String> drivers, ShardGroup forming) {
    Map<String, Integer> load = new HashMap<>();
    drivers.forEach(driver -> load.put(driver, 0));
    for (ShardGroup group : groups.values()) {
      if (group != forming && group.state != GroupState.DOWN) {
        load.computeIfPresent(group.driver, (driver, n) -> n + 1);
      }
    }
    int fewest = load.values().stream().min(Integer::compare).orElseThrow();
    return load.getOrDefault(forming.driver, -1) == fewest ? forming.driver
        : drivers.stream().filter(driver -> load.get(driver) == fewest).findFirst().orElseThrow();
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

  private void form(ShardGroup group, List<String> drivers) throws InterruptedException {
    group.driver = leastLoadedDriver(drivers, group);
    group.state = GroupState.FORMING;
    group.reason = "";
    group.formation++;
    publish();
    List<NodeRecord> members = List.of(group.members);
    for (int r = 0; r < members.size(); r++) {
      assign(members.get(r).nodeId(), new ShardAssignment(group.groupId, r, members.size()));
    }
    long healthStepId = group.stepIds.incrementAndGet();
    GroupFormation.Outcome outcome = formation.form(group.groupId, members, healthStepId,
        runId + "/" + group.groupId + "/" + group.formation, ledEpoch);
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
    group.ranks = outcome.ranks().stream()
        .map(rank -> new PublishedGroup.Rank(rank.nodeId(), rank.address(), rank.vocabStart(), rank.vocabEnd())).toList();
    group.numKvBlocks = outcome.numKvBlocks();
    group.healthStepId = healthStepId;
    LOG.info(() -> "shard group " + group.groupId + " is READY for coordinator " + group.driver + ": "
        + outcome.ranks().stream().map(ShardRank::nodeId).toList());
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

  /** Writes every group that changed since last written to the map the coordinators read. */
  private void publish() {
    if (ledEpoch < 0) {
      return;
    }
    for (ShardGroup group : groups.values()) {
      PublishedGroup now = group.published(ledEpoch);
      if (leadership.epochIfLeader() != ledEpoch) {
        return; // deposed meanwhile: the new leader publishes
      }
      if (!now.equals(lastPublished.get(group.groupId))) {
        try {
          published.set(group.groupId, now);
          lastPublished.put(group.groupId, now);
        } catch (HazelcastInstanceNotActiveException e) {
          return; // shutting down
        } catch (RuntimeException e) {
          LOG.log(Level.WARNING, "could not publish shard group " + group.groupId + "; retrying", e);
        }
      }
    }
  }

  /** Stops placing (groups stay loaded on their shards); waits up to 5 s for a formation in progress. */
  @Override
  public void close() {
    if (listenerId != null) {
      try {
        registry.removeListener(listenerId);
        lostReports.removeMessageListener(lostListenerId);
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
