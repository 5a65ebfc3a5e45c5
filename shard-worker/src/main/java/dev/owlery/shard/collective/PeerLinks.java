package dev.owlery.shard.collective;

import dev.owlery.cluster.rpc.GrpcChannels;
import dev.owlery.proto.internal.v1.Contribution;
import dev.owlery.proto.internal.v1.ExchangeContributionsRequest;
import dev.owlery.proto.internal.v1.PeerHandshake;
import dev.owlery.proto.internal.v1.ShardPeerGrpc;
import dev.owlery.proto.internal.v1.SharedMemoryOffer;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One rank's peer streams and what they deliver: a stream per peer (opened to higher ranks,
 * accepted from lower ones), the contributions received and not yet summed, and whether the group
 * is broken. Stream callbacks (gRPC threads) only queue and signal; the step thread sends and waits,
 * always bounded by a deadline. Breaking is for good and closes every stream, so peers fail too.
 *
 * <p>Where this rank offers a file of host shared memory ({@link SharedSlots}) and a peer can map
 * it, the pair agrees in the handshake (the acceptor decides, shard_peer.proto) to read each
 * other's partials from the files; their stream stays open, so a lost peer still breaks the group.
 */
final class PeerLinks implements PeerInbound {

  /**
   * Most contributions of one peer queued here. Each rank waits for every peer's contribution
   * before it sends its next one, so a peer is at most one all-reduce ahead: two queued at most.
   */
  private static final int MAX_QUEUED_PER_PEER = 2;
  /**
   * Waiting for a peer's slot: busy for this long (its partial is usually microseconds away), then
   * parked {@link #PARK_NANOS} at a time, so that a rank waiting for a peer that has no core (a
   * host running more processes than it has cores) gives its own up instead of burning it.
   */
  private static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(30);
  private static final long PARK_NANOS = TimeUnit.MICROSECONDS.toNanos(20);

  private final PeerGroup group;
  private final CollectiveConfig config;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  /** Guarded by {@link #lock}: the channels of the streams this rank opened, null elsewhere. */
  private final ManagedChannel[] channels;
  /** Guarded by {@link #lock}: the sending half of each peer's stream, null for this rank. */
  private final PeerStream<?>[] streams;
  /** Guarded by {@link #lock}: handshakes done. */
  private final boolean[] connected;
  /** Guarded by {@link #lock}: contributions received and not yet summed, per peer. */
  private final List<ArrayDeque<Contribution>> inbox;
  /** Guarded by {@link #lock}: why the group broke; null while healthy. */
  private PeerLostException failure;
  private volatile boolean broken;
  /** Completed when the group breaks. */
  private final CompletableFuture<Void> whenBroken = new CompletableFuture<>();
  private PeerHub hub;
  /** This rank's file of shared memory, offered to peers; null: none. */
  private final SharedSlots own;
  /**
   * Guarded by {@link #lock} while connecting, read without it after {@link #connect} returned: the
   * file of each peer this rank reads partials from; null where the pair exchanges messages.
   */
  private final SharedSlots[] peerSlots;

  /** The links of {@code group}; {@code own}: this rank's file to offer peers, or null. */
  PeerLinks(PeerGroup group, CollectiveConfig config, SharedSlots own) {
    this.group = group;
    this.config = config;
    this.own = own;
    int n = group.worldSize();
    this.peerSlots = new SharedSlots[n];
    this.channels = new ManagedChannel[n];
    this.streams = new PeerStream<?>[n];
    this.connected = new boolean[n];
    this.inbox = new ArrayList<>(n);
    for (int r = 0; r < n; r++) {
      inbox.add(new ArrayDeque<>(MAX_QUEUED_PER_PEER));
    }
  }

  PeerGroup group() {
    return group;
  }

  /**
   * Takes the streams lower ranks open through {@code peerHub} (also those that arrived before),
   * opens one to every higher rank, and returns once every handshake is done.
   *
   * @throws PeerLostException naming the first peer without a handshake after the connect timeout,
   *     or one whose stream broke or whose handshake does not fit
   */
  void connect(PeerHub peerHub) {
    this.hub = peerHub;
    peerHub.install(this);
    for (int j = group.rank() + 1; j < group.worldSize(); j++) {
      open(j);
    }
    long deadline = System.nanoTime() + config.connectTimeout().toNanos();
    lock.lock();
    try {
      while (failure == null) {
        int missing = firstUnconnected();
        if (missing < 0) {
          return;
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          failLocked(new PeerLostException(missing, "tensor-parallel group %s rank %d: no handshake from peer %s within %d ms"
              .formatted(group.groupId(), group.rank(), group.describe(missing), config.connectTimeout().toMillis())));
          break;
        }
        changed.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failLocked(new PeerLostException(-1, "interrupted while forming group " + group.groupId()));
    } finally {
      lock.unlock();
    }
    closeStreams();
    throw failure();
  }

  /**
   * Sends {@code contribution} to {@code peer}, waiting for flow control until {@code deadline}.
   *
   * @param since when the all-reduce began (System.nanoTime), and {@code stepId} the step and
   *     {@code ordinal} the all-reduce in it, for messages
   * @throws PeerLostException when the stream is closed or stays full past the deadline
   */
  void send(int peer, Contribution contribution, long since, long deadline, long stepId, int ordinal) {
    PeerStream<?> stream;
    lock.lock();
    try {
      stream = streams[peer];
    } finally {
      lock.unlock();
    }
    try {
      stream.send(contribution, deadline);
    } catch (TimeoutException e) {
      throw fail(new PeerLostException(peer, "%s: peer %s did not take our contribution within %d ms (flow control)"
          .formatted(where(stepId, ordinal), group.describe(peer), TimeUnit.NANOSECONDS.toMillis(deadline - since))));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw fail(new PeerLostException(-1, where(stepId, ordinal) + ": interrupted while sending"));
    } catch (IllegalStateException e) {
      throw fail(new PeerLostException(peer, "%s: the stream to peer %s is closed"
          .formatted(where(stepId, ordinal), group.describe(peer))));
    }
  }

  /**
   * The next contribution {@code peer} sent, waiting until {@code deadline}; {@code since} and the
   * rest as for {@link #send}.
   *
   * @throws PeerLostException when the group breaks or nothing arrives in time
   */
  Contribution receive(int peer, long since, long deadline, long stepId, int ordinal) {
    lock.lock();
    try {
      while (failure == null) {
        Contribution next = inbox.get(peer).poll();
        if (next != null) {
          return next;
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          failLocked(new PeerLostException(peer, "%s: no contribution from peer %s within %d ms"
              .formatted(where(stepId, ordinal), group.describe(peer), TimeUnit.NANOSECONDS.toMillis(deadline - since))));
          break;
        }
        changed.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failLocked(new PeerLostException(-1, where(stepId, ordinal) + ": interrupted while waiting for peers"));
    } finally {
      lock.unlock();
    }
    closeStreams();
    throw failure();
  }

  /** Where this rank is, for messages: group, rank, step, all-reduce. */
  String where(long stepId, int ordinal) {
    return "tensor-parallel group %s rank %d, step %d all-reduce #%d".formatted(group.groupId(), group.rank(), stepId,
        ordinal);
  }

  boolean isBroken() {
    return broken;
  }

  /** Completed when the group breaks; its dependents run on the breaking thread, under this lock. */
  CompletableFuture<Void> whenBroken() {
    return whenBroken;
  }

  /** The group's failure, to throw; call only when broken. */
  PeerLostException failure() {
    lock.lock();
    try {
      return new PeerLostException(failure.peerRank(), failure.getMessage());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Takes a stream a lower rank opened, after checking its handshake, and answers with this rank's;
   * a handshake that does not fit closes the stream with FAILED_PRECONDITION.
   *
   * @return false when this group is already broken: the stream belongs to its successor, once loaded
   */
  boolean attach(AcceptedStream stream) {
    PeerHandshake theirs = stream.handshake();
    int peer = theirs.getRank();
    boolean fits;
    lock.lock();
    try {
      if (failure != null) {
        return false;
      }
      fits = theirs.getWorldSize() == group.worldSize() && peer >= 0 && peer < group.rank() && !connected[peer]
          && streams[peer] == null;
      if (fits) {
        streams[peer] = stream.outbound();
      }
    } finally {
      lock.unlock();
    }
    if (fits && own != null && theirs.hasSharedMemory()) {
      SharedSlots slots = mapOffered(theirs.getSharedMemory());
      lock.lock();
      try {
        peerSlots[peer] = slots;
      } finally {
        lock.unlock();
      }
    }
    if (!fits) {
      stream.reject(Status.FAILED_PRECONDITION.withDescription(("rank %d of group %s (world size %d) expects "
          + "streams from ranks 0..%d, one each. Given: rank %d, world size %d").formatted(group.rank(),
          group.groupId(), group.worldSize(), group.rank() - 1, peer, theirs.getWorldSize())));
      return true;
    }
    try {
      stream.attach(this, handshake(peerSlots(peer) != null));
    } catch (IllegalStateException e) {
      onClosed(peer, "closed before the handshake was answered");
      return true;
    }
    markConnected(peer);
    return true;
  }

  @Override
  public void onHandshake(int peerRank, PeerHandshake theirs) {
    if (!theirs.getGroupId().equals(group.groupId()) || theirs.getRank() != peerRank
        || theirs.getWorldSize() != group.worldSize()) {
      fail(new PeerLostException(peerRank, ("peer %s answered the handshake as group %s rank %d world size %d; "
          + "expected group %s rank %d world size %d").formatted(group.describe(peerRank), theirs.getGroupId(),
          theirs.getRank(), theirs.getWorldSize(), group.groupId(), peerRank, group.worldSize())));
      return;
    }
    if (theirs.getSharedMemory().getAccepted()) {
      SharedSlots slots = own == null ? null : mapOffered(theirs.getSharedMemory());
      if (slots == null) {
        fail(new PeerLostException(peerRank, "peer %s accepted to exchange partials through shared memory, but %s"
            .formatted(group.describe(peerRank), own == null ? "this rank offered none"
                : "this rank cannot map its file " + theirs.getSharedMemory().getPath())));
        return;
      }
      lock.lock();
      try {
        peerSlots[peerRank] = slots;
      } finally {
        lock.unlock();
      }
    }
    markConnected(peerRank);
  }

  /** The peer's offered file, mapped; null when this host cannot map it (another host, say). */
  static SharedSlots mapOffered(SharedMemoryOffer offer) {
    try {
      return SharedSlots.open(Path.of(offer.getPath()), offer.getToken());
    } catch (UncheckedIOException | InvalidPathException e) {
      return null;
    }
  }

  /** The file {@code peer}'s partials are read from; null where the pair exchanges messages. */
  SharedSlots peerSlots(int peer) {
    lock.lock();
    try {
      return peerSlots[peer];
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits until {@code peer} has published its {@code seq}-th partial in its file: busy briefly,
   * then parking, and bounded by {@code deadline}; the rest as for {@link #receive}.
   *
   * @throws PeerLostException when the group breaks (a peer's stream broke) or nothing comes in time
   */
  void awaitShared(SharedSlots slots, int peer, long seq, long since, long deadline, long stepId, int ordinal) {
    long waitStart = System.nanoTime();
    while (!slots.published(seq)) {
      if (broken) {
        closeStreams();
        throw failure();
      }
      long now = System.nanoTime();
      if (now - deadline >= 0) {
        throw fail(new PeerLostException(peer, "%s: no contribution from peer %s within %d ms"
            .formatted(where(stepId, ordinal), group.describe(peer), TimeUnit.NANOSECONDS.toMillis(deadline - since))));
      }
      if (now - waitStart < SPIN_NANOS) {
        Thread.onSpinWait();
      } else {
        LockSupport.parkNanos(PARK_NANOS);
        if (Thread.interrupted()) {
          Thread.currentThread().interrupt();
          throw fail(new PeerLostException(-1, where(stepId, ordinal) + ": interrupted while waiting for peers"));
        }
      }
    }
  }

  @Override
  public void onContribution(int peerRank, Contribution contribution) {
    lock.lock();
    try {
      if (failure != null) {
        return;
      }
      ArrayDeque<Contribution> queue = inbox.get(peerRank);
      if (queue.size() >= MAX_QUEUED_PER_PEER) {
        failLocked(new PeerLostException(peerRank, "peer %s sent more than %d contributions ahead of rank %d"
            .formatted(group.describe(peerRank), MAX_QUEUED_PER_PEER, group.rank())));
      } else {
        queue.add(contribution);
        changed.signalAll();
        return;
      }
    } finally {
      lock.unlock();
    }
    closeStreams();
  }

  @Override
  public void onClosed(int peerRank, String why) {
    fail(new PeerLostException(peerRank, "tensor-parallel group %s rank %d lost peer %s: its stream %s"
        .formatted(group.groupId(), group.rank(), group.describe(peerRank), why)));
  }

  private void markConnected(int peer) {
    lock.lock();
    try {
      connected[peer] = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private int firstUnconnected() {
    for (int r = 0; r < group.worldSize(); r++) {
      if (r != group.rank() && !connected[r]) {
        return r;
      }
    }
    return -1;
  }

  /** This rank's handshake: offers its file, if any; {@code accepted}: the answer takes the opener's. */
  private PeerHandshake handshake(boolean accepted) {
    PeerHandshake.Builder handshake = PeerHandshake.newBuilder().setGroupId(group.groupId()).setRank(group.rank())
        .setWorldSize(group.worldSize());
    if (own != null) {
      handshake.setSharedMemory(own.offer().toBuilder().setAccepted(accepted));
    }
    return handshake.build();
  }

  private void open(int peer) {
    ManagedChannel channel = GrpcChannels.forTarget(group.address(peer), config.channel());
    OpenedStream opened = new OpenedStream(peer, this);
    lock.lock();
    try {
      channels[peer] = channel;
    } finally {
      lock.unlock();
    }
    ShardPeerGrpc.newStub(channel).exchangeContributions(opened);
    PeerStream<ExchangeContributionsRequest> outbound = opened.outbound();
    lock.lock();
    try {
      streams[peer] = outbound;
    } finally {
      lock.unlock();
    }
    try {
      outbound.sendNow(ExchangeContributionsRequest.newBuilder().setHandshake(handshake(false)).build());
    } catch (IllegalStateException e) {
      onClosed(peer, "closed before the handshake was sent");
    }
  }

  /** Breaks the group with {@code cause} (the first cause wins), closes every stream, returns the failure. */
  PeerLostException fail(PeerLostException cause) {
    lock.lock();
    try {
      failLocked(cause);
    } finally {
      lock.unlock();
    }
    closeStreams();
    return failure();
  }

  private void failLocked(PeerLostException cause) {
    if (failure == null) {
      failure = cause;
      broken = true;
      whenBroken.complete(null);
    }
    changed.signalAll();
  }

  /** Ends every peer stream with UNAVAILABLE saying why, so the peers' steps fail too. */
  private void closeStreams() {
    List<PeerStream<?>> open = new ArrayList<>();
    String reason;
    lock.lock();
    try {
      reason = failure == null ? "closed" : failure.getMessage();
      for (PeerStream<?> stream : streams) {
        if (stream != null) {
          open.add(stream);
        }
      }
    } finally {
      lock.unlock();
    }
    Status status = Status.UNAVAILABLE.withDescription(
        "rank %d left tensor-parallel group %s: %s".formatted(group.rank(), group.groupId(), reason));
    for (PeerStream<?> stream : open) {
      stream.close(status);
    }
  }

  /** Leaves the group: breaks it (peers' steps fail), closes the streams and channels. */
  void close() {
    if (hub != null) {
      hub.uninstall(this);
    }
    fail(new PeerLostException(-1, "rank %d released its slice of group %s".formatted(group.rank(), group.groupId())));
    List<ManagedChannel> open = new ArrayList<>();
    lock.lock();
    try {
      for (ManagedChannel channel : channels) {
        if (channel != null) {
          open.add(channel);
        }
      }
    } finally {
      lock.unlock();
    }
    for (ManagedChannel channel : open) {
      channel.shutdownNow();
    }
    try {
      for (ManagedChannel channel : open) {
        channel.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
