package dev.owlery.cluster.registry;

import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstanceNotActiveException;
import com.hazelcast.core.LifecycleEvent;
import com.hazelcast.map.IMap;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryRemovedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import dev.owlery.cluster.membership.ClusterMember;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

/**
 * The cluster-wide node registry: a Hazelcast map from node id to {@link NodeRecord}. Every node
 * registers itself; when a member leaves (gracefully or by failure detection) the surviving
 * members remove the records of the nodes that ran in it.
 *
 * <p>Each member keeps its own nodes' records and puts them back when the map no longer holds
 * them under this member, checked every {@link #RECONCILE_INTERVAL}, when the map reports a lost
 * partition and when this member's cluster merges into another:
 * <ul>
 *   <li>a member that crashes while partitions still migrate (a cluster that just formed) or two
 *       that crash together can take both copies of a partition with them (the map keeps one
 *       backup), and with it the records of nodes that are still alive;
 *   <li>a member that merges (it started before its seeds were up, or the network split) has a
 *       new member UUID, and the merged map still holds its nodes under the old one.
 * </ul>
 * Thread-safe; map operations block until the owning member answers.
 */
public final class NodeRegistry implements AutoCloseable {

  /** Name of the Hazelcast map holding the records. */
  public static final String MAP_NAME = "owlery.nodes";

  /** How often a member checks that the map still holds its own nodes' records. */
  public static final Duration RECONCILE_INTERVAL = Duration.ofSeconds(1);

  private static final Logger LOG = Logger.getLogger(NodeRegistry.class.getName());

  private final ClusterMember member;
  private final IMap<String, NodeRecord> nodes;
  // Removes departed members' records and restores this member's own, off the Hazelcast event
  // thread, which must not block.
  private final ScheduledExecutorService janitor;
  private final UUID membershipListenerId;
  private final UUID lifecycleListenerId;
  private final UUID partitionLostListenerId;
  /**
   * This member's own nodes, as last written or seen in the map, to restore. Guarded by itself
   * together with the map writes for them, so a node deregistered is never put back.
   */
  private final Map<String, NodeRecord> own = new HashMap<>();

  /** Opens the registry of the cluster {@code member} belongs to. */
  public NodeRegistry(ClusterMember member) {
    this.member = member;
    this.nodes = member.hazelcast().getMap(MAP_NAME);
    this.janitor = Executors.newSingleThreadScheduledExecutor(
        Thread.ofPlatform().name("owlery-registry-janitor").daemon().factory());
    this.membershipListenerId = member.hazelcast().getCluster().addMembershipListener(new DepartureListener());
    this.lifecycleListenerId = member.hazelcast().getLifecycleService().addLifecycleListener(event -> {
      if (event.getState() == LifecycleEvent.LifecycleState.MERGED) {
        inBackground(this::restoreOwn);
      }
    });
    this.partitionLostListenerId = nodes.addPartitionLostListener(event -> inBackground(this::restoreOwn));
    // Members that left before this one joined cannot be noticed by the listener.
    janitor.execute(this::removeRecordsOfDepartedMembers);
    long interval = RECONCILE_INTERVAL.toMillis();
    janitor.scheduleWithFixedDelay(this::restoreOwn, interval, interval, TimeUnit.MILLISECONDS);
  }

  /** Adds or replaces {@code node}'s record. */
  public void register(NodeRecord node) {
    synchronized (own) {
      nodes.set(node.nodeId(), node);
      if (node.memberUuid().equals(member.memberUuid())) {
        own.put(node.nodeId(), node);
      }
    }
  }

  /** Removes a node's record, e.g. as it shuts down; unknown ids are ignored. */
  public void deregister(String nodeId) {
    synchronized (own) {
      own.remove(nodeId);
      nodes.delete(nodeId);
    }
  }

  /**
   * Puts this member's nodes back where the map lost them, and moves them to this member's current
   * UUID where it changed (a merge); a record the map still holds is kept as it is there (another
   * member may have updated it) and remembered.
   */
  private void restoreOwn() {
    try {
      synchronized (own) {
        if (own.isEmpty() || !member.isRunning()) {
          return;
        }
        UUID now = member.memberUuid();
        Map<String, NodeRecord> held = nodes.getAll(own.keySet());
        for (NodeRecord last : List.copyOf(own.values())) {
          NodeRecord current = held.get(last.nodeId());
          NodeRecord restored;
          if (current == null) {
            restored = last.withMemberUuid(now);
            NodeRecord raced = nodes.putIfAbsent(restored.nodeId(), restored);
            if (raced == null) {
              LOG.info("the registry had lost node " + restored.nodeId() + "; registered it again");
            }
            restored = raced != null ? raced : restored;
          } else if (!current.memberUuid().equals(now)) {
            restored = current.withMemberUuid(now);
            if (!nodes.replace(restored.nodeId(), current, restored)) {
              continue; // Changed meanwhile; the next round looks again.
            }
          } else {
            restored = current;
          }
          own.put(restored.nodeId(), restored);
        }
      }
    } catch (HazelcastInstanceNotActiveException e) {
      // This member is shutting down.
    } catch (RuntimeException e) {
      // A partition without an owner for a moment, a timeout: the next round tries again.
      LOG.log(Level.FINE, "could not restore this member's node records; retrying", e);
    }
  }

  private void inBackground(Runnable task) {
    try {
      janitor.execute(task);
    } catch (RejectedExecutionException e) {
      // The registry is closed.
    }
  }

  /**
   * Applies {@code change} to a node's record atomically (compare-and-set; {@code change} may run
   * more than once and must not have side effects).
   *
   * @return the new record
   * @throws IllegalStateException when the node is not registered
   */
  public NodeRecord update(String nodeId, UnaryOperator<NodeRecord> change) {
    while (true) {
      NodeRecord current = nodes.get(nodeId);
      if (current == null) {
        throw new IllegalStateException("node " + nodeId + " is not registered; known nodes: " + nodes.keySet());
      }
      NodeRecord next = change.apply(current);
      if (!next.nodeId().equals(nodeId)) {
        throw new IllegalArgumentException("an update must keep the node id " + nodeId + ". Given: " + next.nodeId());
      }
      if (nodes.replace(nodeId, current, next)) {
        synchronized (own) {
          own.computeIfPresent(nodeId, (id, previous) -> next);
        }
        return next;
      }
    }
  }

  public NodeRecord setState(String nodeId, NodeState state) {
    return update(nodeId, node -> node.withState(state));
  }

  /** Places a shard worker in a group; null removes the placement. */
  public NodeRecord assign(String nodeId, ShardAssignment assignment) {
    return update(nodeId, node -> node.withAssignment(assignment));
  }

  public Optional<NodeRecord> find(String nodeId) {
    return Optional.ofNullable(nodes.get(nodeId));
  }

  /** Every registered node, sorted by node id. */
  public List<NodeRecord> nodes() {
    List<NodeRecord> all = new ArrayList<>(nodes.values());
    all.sort(Comparator.comparing(NodeRecord::nodeId));
    return List.copyOf(all);
  }

  /** The registered nodes with {@code role}, sorted by node id. */
  public List<NodeRecord> nodes(NodeRole role) {
    return nodes().stream().filter(node -> node.role() == role).toList();
  }

  /**
   * Calls {@code listener} for every change from now on, made by any member.
   *
   * @return the id to pass to {@link #removeListener}
   */
  public UUID addListener(NodeRegistryListener listener) {
    return nodes.addEntryListener(new EntryAdapter(listener), true);
  }

  public void removeListener(UUID listenerId) {
    nodes.removeEntryListener(listenerId);
  }

  /** Stops watching membership; the member itself stays up (its owner closes it). */
  @Override
  public void close() {
    if (member.isRunning()) {
      member.hazelcast().getCluster().removeMembershipListener(membershipListenerId);
      member.hazelcast().getLifecycleService().removeLifecycleListener(lifecycleListenerId);
      nodes.removePartitionLostListener(partitionLostListenerId);
    }
    janitor.shutdown();
    try {
      if (!janitor.awaitTermination(5, TimeUnit.SECONDS)) {
        janitor.shutdownNow();
      }
    } catch (InterruptedException e) {
      janitor.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private void removeRecordsOfDepartedMembers() {
    Set<UUID> alive = member.members().stream().map(Member::getUuid).collect(Collectors.toSet());
    removeRecordsWhere(node -> !alive.contains(node.memberUuid()));
  }

  /**
   * Removes every record {@code departed} accepts. Each removal is conditional, so a node that
   * re-registered from a new member keeps its new record; one that fails because the record was
   * updated meanwhile (a placement still writing to the departed node) reads the record again and
   * retries, or the departed node would stay registered for good: the member is removed only once.
   */
  private void removeRecordsWhere(Predicate<NodeRecord> departed) {
    try {
      for (NodeRecord node : nodes.values()) {
        NodeRecord current = node;
        while (current != null && departed.test(current) && !nodes.remove(current.nodeId(), current)) {
          current = nodes.get(node.nodeId());
        }
      }
    } catch (HazelcastInstanceNotActiveException e) {
      // This member is shutting down itself; the survivors clean up.
    }
  }

  private final class DepartureListener implements MembershipListener {
    @Override
    public void memberAdded(MembershipEvent event) {}

    @Override
    public void memberRemoved(MembershipEvent event) {
      UUID departed = event.getMember().getUuid();
      inBackground(() -> removeRecordsWhere(node -> node.memberUuid().equals(departed)));
    }
  }

  private record EntryAdapter(NodeRegistryListener listener)
      implements EntryAddedListener<String, NodeRecord>,
          EntryUpdatedListener<String, NodeRecord>,
          EntryRemovedListener<String, NodeRecord> {

    @Override
    public void entryAdded(EntryEvent<String, NodeRecord> event) {
      listener.nodeAdded(event.getValue());
    }

    @Override
    public void entryUpdated(EntryEvent<String, NodeRecord> event) {
      listener.nodeUpdated(event.getOldValue(), event.getValue());
    }

    @Override
    public void entryRemoved(EntryEvent<String, NodeRecord> event) {
      listener.nodeRemoved(event.getOldValue());
    }
  }
}
