package dev.owlery.coordinator.placement;

import com.hazelcast.core.EntryAdapter;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstanceNotActiveException;
import com.hazelcast.map.IMap;
import com.hazelcast.topic.ITopic;
import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The groups this coordinator steps, as every coordinator learns them: the placement leader
 * publishes each group ({@link PublishedGroup}) and names its driver; a READY group this
 * coordinator drives becomes a {@link ServingGroup} on this coordinator's own channels, and goes
 * {@link ServingGroup#lost() lost} when a later formation, another driver or another state is
 * published. Losses the scheduler finds are reported to the leader through a topic. Re-read on
 * every change of the map and every second. Thread-safe; never blocks.
 */
public final class DrivenGroups implements GroupDirectory, AutoCloseable {

  /** The map of published groups, by group id. */
  public static final String MAP_NAME = "owlery.groups";
  /** The topic of {@link LostReport}s, read by the placement leader. */
  static final String LOST_TOPIC = "owlery.groups.lost";
  private static final long REFRESH_PERIOD_MS = 1000;
  private static final Logger LOG = Logger.getLogger(DrivenGroups.class.getName());

  /** A driver's report that {@code nodeIds} of a formation failed a step. */
  record LostReport(String groupId, long formation, List<String> nodeIds, String reason) implements Serializable {
    LostReport {
      nodeIds = List.copyOf(nodeIds);
    }
  }

  private final String nodeId;
  private final IMap<String, PublishedGroup> published;
  private final ITopic<LostReport> lostReports;
  private final NodeChannels channels;
  private final UUID listenerId;
  private final ScheduledExecutorService refresher =
      Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("owlery-driven-groups").daemon().factory());
  /** The ServingGroup of each READY group this coordinator drives; confined to the refresher thread. */
  private final Map<String, ServingGroup> driven = new HashMap<>();
  private volatile List<ServingGroup> serving = List.of();
  private volatile List<GroupStatus> statuses = List.of();
  private volatile Set<String> mine = Set.of();

  /** Watches the published groups for those coordinator {@code nodeId} drives. */
  public DrivenGroups(ClusterMember member, String nodeId, NodeChannels channels) {
    this.nodeId = nodeId;
    this.channels = channels;
    this.published = member.hazelcast().getMap(MAP_NAME);
    this.lostReports = member.hazelcast().getTopic(LOST_TOPIC);
    this.listenerId = published.addEntryListener(new Changes(), false);
    refresher.scheduleWithFixedDelay(this::refresh, 0, REFRESH_PERIOD_MS, TimeUnit.MILLISECONDS);
  }

  @Override
  public List<ServingGroup> servingGroups() {
    return serving;
  }

  @Override
  public List<GroupStatus> groupStatuses() {
    return statuses;
  }

  /** Whether the last formation of {@code groupId} was published for this coordinator (READY or not). */
  @Override
  public boolean drives(String groupId) {
    return mine.contains(groupId);
  }

  @Override
  public void reportLost(ServingGroup group, List<String> lostNodeIds, String reason) {
    group.lost().complete(reason);
    try {
      lostReports.publish(new LostReport(group.groupId(), group.formation(), lostNodeIds, reason));
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "could not report the loss of group " + group.groupId() + " to the placement leader", e);
    }
  }

  private void refreshSoon() {
    try {
      refresher.execute(this::refresh);
    } catch (RejectedExecutionException e) {
      // Closed.
    }
  }

  /** Re-reads the published groups and updates the serving ones. */
  private void refresh() {
    List<PublishedGroup> all;
    try {
      all = new ArrayList<>(published.values());
    } catch (HazelcastInstanceNotActiveException e) {
      return;
    } catch (RuntimeException e) {
      LOG.log(Level.FINE, "could not read the published groups; retrying", e);
      return;
    }
    all.sort(Comparator.comparing(PublishedGroup::groupId));
    Map<String, PublishedGroup> byId = new HashMap<>();
    all.forEach(group -> byId.put(group.groupId(), group));
    for (var it = driven.entrySet().iterator(); it.hasNext(); ) {
      var entry = it.next();
      PublishedGroup now = byId.get(entry.getKey());
      if (now == null || now.state() != GroupState.READY || !now.driverNodeId().equals(nodeId)
          || now.formation() != entry.getValue().formation()) {
        entry.getValue().lost().complete(whyLost(entry.getKey(), now));
        it.remove();
      }
    }
    for (PublishedGroup group : all) {
      if (group.state() == GroupState.READY && group.driverNodeId().equals(nodeId) && !driven.containsKey(group.groupId())) {
        driven.put(group.groupId(), serving(group));
      }
    }
    serving = driven.values().stream().sorted(Comparator.comparing(ServingGroup::groupId)).toList();
    statuses = all.stream().map(PublishedGroup::status).toList();
    mine = all.stream().filter(group -> group.driverNodeId().equals(nodeId)).map(PublishedGroup::groupId)
        .collect(Collectors.toUnmodifiableSet());
  }

  /** Why the formation this coordinator drove of {@code groupId} ended, now that {@code now} is published (null: none). */
  private String whyLost(String groupId, PublishedGroup now) {
    if (now == null) {
      return "group " + groupId + " was removed";
    }
    if (now.state() != GroupState.READY) {
      return now.reason().isEmpty() ? "group " + groupId + " is " + now.state() : now.reason();
    }
    if (!now.driverNodeId().equals(nodeId)) {
      return "group " + groupId + " is driven by " + now.driverNodeId();
    }
    return "group " + groupId + " was re-formed";
  }

  private ServingGroup serving(PublishedGroup group) {
    List<ShardRank> ranks = new ArrayList<>();
    for (int r = 0; r < group.ranks().size(); r++) {
      PublishedGroup.Rank rank = group.ranks().get(r);
      ranks.add(new ShardRank(rank.nodeId(), rank.address(), r, rank.vocabStart(), rank.vocabEnd(),
          ShardWorkerGrpc.newStub(channels.channel(rank.address()))));
    }
    return new ServingGroup(group.groupId(), group.formation(), ranks, group.numKvBlocks(),
        new AtomicLong(group.healthStepId()), new CompletableFuture<>());
  }

  @Override
  public void close() {
    try {
      published.removeEntryListener(listenerId);
    } catch (HazelcastInstanceNotActiveException e) {
      // The member is already down.
    }
    refresher.shutdownNow();
  }

  private final class Changes extends EntryAdapter<String, PublishedGroup> {
    @Override
    public void onEntryEvent(EntryEvent<String, PublishedGroup> event) {
      refreshSoon();
    }
  }
}
