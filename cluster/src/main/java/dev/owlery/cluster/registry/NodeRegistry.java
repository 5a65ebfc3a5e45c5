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
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

/**
 * The cluster-wide node registry: a Hazelcast map from node id to {@link NodeRecord}. Every node
 * registers itself; when a member leaves (gracefully or by failure detection) the surviving
 * members remove the records of the nodes that ran in it. When this member's cluster merges into
 * another (it had started before its seeds were up, or the network split), it registers its own
 * records again under its new member UUID, so they appear in the merged cluster. Thread-safe; map
 * operations block until the owning member answers.
 */
public final class NodeRegistry implements AutoCloseable {

  /** Name of the Hazelcast map holding the records. */
  public static final String MAP_NAME = "owlery.nodes";

  private final ClusterMember member;
  private final IMap<String, NodeRecord> nodes;
  // Removes departed members' records off the Hazelcast event thread, which must not block.
  private final ExecutorService janitor;
  private final UUID membershipListenerId;
  private final UUID lifecycleListenerId;
  /** The records of this member's own nodes, as last written, for re-registering after a merge. */
  private final Map<String, NodeRecord> own = new ConcurrentHashMap<>();

  /** Opens the registry of the cluster {@code member} belongs to. */
  public NodeRegistry(ClusterMember member) {
    this.member = member;
    this.nodes = member.hazelcast().getMap(MAP_NAME);
    this.janitor = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("owlery-registry-janitor").daemon().factory());
    this.membershipListenerId = member.hazelcast().getCluster().addMembershipListener(new DepartureListener());
    this.lifecycleListenerId = member.hazelcast().getLifecycleService().addLifecycleListener(event -> {
      if (event.getState() == LifecycleEvent.LifecycleState.MERGED) {
        try {
          janitor.execute(this::registerOwnAgain);
        } catch (RejectedExecutionException e) {
          // The registry is closed.
        }
      }
    });
    // Members that left before this one joined cannot be noticed by the listener.
    janitor.execute(this::removeRecordsOfDepartedMembers);
  }

  /** Adds or replaces {@code node}'s record. */
  public void register(NodeRecord node) {
    nodes.set(node.nodeId(), node);
    if (node.memberUuid().equals(member.memberUuid())) {
      own.put(node.nodeId(), node);
    }
  }

  /** Removes a node's record, e.g. as it shuts down; unknown ids are ignored. */
  public void deregister(String nodeId) {
    own.remove(nodeId);
    nodes.delete(nodeId);
  }

  /** After a merge: this member's nodes registered again, as the merged map has them or as last written here. */
  private void registerOwnAgain() {
    try {
      UUID now = member.memberUuid();
      for (NodeRecord last : own.values()) {
        NodeRecord current = nodes.get(last.nodeId());
        NodeRecord moved = (current != null ? current : last).withMemberUuid(now);
        nodes.set(moved.nodeId(), moved);
        own.put(moved.nodeId(), moved);
      }
    } catch (HazelcastInstanceNotActiveException e) {
      // This member is shutting down.
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
        own.computeIfPresent(nodeId, (id, previous) -> next);
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

  private void removeRecordsWhere(Predicate<NodeRecord> departed) {
    try {
      for (NodeRecord node : nodes.values()) {
        if (departed.test(node)) {
          // Conditional: a node that re-registered from a new member keeps its new record.
          nodes.remove(node.nodeId(), node);
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
      try {
        janitor.execute(() -> removeRecordsWhere(node -> node.memberUuid().equals(departed)));
      } catch (RejectedExecutionException e) {
        // The registry is closed; whoever still runs one cleans up.
      }
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
