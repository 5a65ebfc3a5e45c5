package dev.owlery.coordinator.placement;

import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.EntryAdapter;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstanceNotActiveException;
import com.hazelcast.map.IMap;
import dev.owlery.cluster.membership.ClusterMember;
import java.io.Serializable;
import java.time.Duration;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * Elects the one coordinator that places shard groups: a leader record in a Hazelcast map, held
 * while the leader's member is in the cluster and taken over, with a compare-and-set, by another
 * coordinator once that member has left (failure detection removes a killed one within {@code
 * maxNoHeartbeat}). Each leader gets an epoch one above every epoch seen before, the fencing token
 * its LoadSlices carry. No CP subsystem: it needs three members, and a cluster may have two
 * coordinators. Checked on every membership change and every change to the record, and every
 * {@link #CHECK_INTERVAL} besides (an event missed while partitions migrate).
 */
public final class PlacementLeadership implements AutoCloseable {

  /** The map holding the leader record. */
  public static final String MAP_NAME = "owlery.placement";
  static final Duration CHECK_INTERVAL = Duration.ofSeconds(1);
  private static final String KEY = "leader";
  private static final Logger LOG = Logger.getLogger(PlacementLeadership.class.getName());

  /** The placement leader: its coordinator, the member it runs in, its fencing epoch. */
  public record Leader(String nodeId, UUID memberUuid, long epoch) implements Serializable {}

  private final ClusterMember member;
  private final String nodeId;
  private final IMap<String, Leader> map;
  private volatile Runnable onChange = () -> { };
  private final ScheduledExecutorService checker =
      Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("owlery-leadership").daemon().factory());
  private final UUID membershipListenerId;
  private final UUID recordListenerId;
  /** The highest epoch seen; checker thread only. */
  private long highestEpoch;
  private volatile Leader leader;

  /** Coordinator {@code nodeId}'s part in the election; {@link #start} begins it. */
  public PlacementLeadership(ClusterMember member, String nodeId) {
    this.member = member;
    this.nodeId = nodeId;
    this.map = member.hazelcast().getMap(MAP_NAME);
    this.membershipListenerId = member.hazelcast().getCluster().addMembershipListener(new MembershipListener() {
      @Override
      public void memberAdded(MembershipEvent event) {}

      @Override
      public void memberRemoved(MembershipEvent event) {
        checkSoon();
      }
    });
    this.recordListenerId = map.addEntryListener(new RecordChanges(), false);
  }

  /** Any change to the leader record: another coordinator took over, or the record went. */
  private final class RecordChanges extends EntryAdapter<String, Leader> {
    @Override
    public void onEntryEvent(EntryEvent<String, Leader> event) {
      checkSoon();
    }
  }


  /**
   * Starts taking part in the election.
   *
   * @param changed called (on the election's thread) whenever the leader changes
   */
  public PlacementLeadership start(Runnable changed) {
    this.onChange = changed;
    checker.scheduleWithFixedDelay(this::check, 0, CHECK_INTERVAL.toMillis(), TimeUnit.MILLISECONDS);
    return this;
  }

  /** This coordinator's epoch while it leads, else -1. */
  public long epochIfLeader() {
    Leader current = leader;
    return current != null && current.memberUuid().equals(member.memberUuid()) ? current.epoch() : -1;
  }

  /** The leader last seen, or null before the first check. */
  public Leader leader() {
    return leader;
  }

  private void checkSoon() {
    try {
      checker.execute(this::check);
    } catch (RejectedExecutionException e) {
      // Closed.
    }
  }

  /** Reads the record and takes it over when it is missing or its member has left. */
  private void check() {
    try {
      Leader seen = map.get(KEY);
      Set<UUID> alive = member.members().stream().map(Member::getUuid).collect(Collectors.toSet());
      if (seen != null) {
        highestEpoch = Math.max(highestEpoch, seen.epoch());
      }
      if (seen == null || !alive.contains(seen.memberUuid())) {
        Leader mine = new Leader(nodeId, member.memberUuid(), highestEpoch + 1);
        boolean taken = seen == null ? map.putIfAbsent(KEY, mine) == null : map.replace(KEY, seen, mine);
        seen = taken ? mine : map.get(KEY);
        if (taken) {
          LOG.info(() -> "coordinator " + nodeId + " leads placement, epoch " + mine.epoch());
        }
        if (seen != null) {
          highestEpoch = Math.max(highestEpoch, seen.epoch());
        }
      }
      Leader previous = leader;
      leader = seen;
      if (seen != null && !seen.equals(previous)) {
        onChange.run();
      }
    } catch (HazelcastInstanceNotActiveException e) {
      leader = null; // this member is shutting down
    } catch (RuntimeException e) {
      LOG.log(Level.FINE, "could not read the placement leader; retrying", e);
    }
  }

  /**
   * Stops taking part. A leader's record stays until its member leaves (which its coordinator does
   * next), so that the epoch it holds is never lost to a coordinator that has not read it yet.
   */
  @Override
  public void close() {
    checker.shutdownNow();
    try {
      checker.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (member.isRunning()) {
      member.hazelcast().getCluster().removeMembershipListener(membershipListenerId);
      map.removeEntryListener(recordListenerId);
    }
  }
}
