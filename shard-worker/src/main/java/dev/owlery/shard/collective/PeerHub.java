package dev.owlery.shard.collective;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;

/**
 * Routes the streams lower ranks open to this shard to the collective of the group they name. A
 * stream may arrive before this shard has loaded its slice (ranks load concurrently); it then waits
 * here until a collective of its group is installed, or until its opener gives up and cancels it.
 */
final class PeerHub {

  /** Most streams waiting for a slice; more are refused (RESOURCE_EXHAUSTED). */
  static final int MAX_PENDING = 64;

  private final Object lock = new Object();
  /** Guarded by {@link #lock}. */
  private final List<AcceptedStream> pending = new ArrayList<>();
  /** Guarded by {@link #lock}. */
  private PeerLinks installed;
  /** Guarded by {@link #lock}. */
  private boolean closed;

  /**
   * A stream sent its handshake: hand it to the installed collective of its group, or keep it until
   * one is installed (none yet, another group's, or a broken one about to be replaced by LoadSlice).
   */
  void arrived(AcceptedStream stream) {
    PeerLinks target;
    synchronized (lock) {
      target = installed != null && !installed.isBroken()
          && installed.group().groupId().equals(stream.handshake().getGroupId()) ? installed : null;
    }
    if (target == null || !target.attach(stream)) {
      park(stream);
    }
  }

  private void park(AcceptedStream stream) {
    Status refusal = null;
    synchronized (lock) {
      if (closed) {
        refusal = Status.UNAVAILABLE.withDescription("this shard is shutting down");
      } else if (pending.size() >= MAX_PENDING) {
        refusal = Status.RESOURCE_EXHAUSTED.withDescription(
            "this shard already holds " + MAX_PENDING + " peer streams waiting for a slice to be loaded");
      } else {
        pending.add(stream);
      }
    }
    if (refusal != null) {
      stream.reject(refusal);
    }
  }

  /** Makes {@code collective} the receiver of its group's streams and hands it those already waiting. */
  void install(PeerLinks collective) {
    List<AcceptedStream> matching = new ArrayList<>();
    synchronized (lock) {
      installed = collective;
      String groupId = collective.group().groupId();
      pending.removeIf(stream -> {
        boolean ours = stream.handshake().getGroupId().equals(groupId);
        if (ours) {
          matching.add(stream);
        }
        return ours;
      });
    }
    for (AcceptedStream stream : matching) {
      if (!collective.attach(stream)) {
        park(stream);
      }
    }
  }

  /** Stops routing to {@code collective} (when it closes). */
  void uninstall(PeerLinks collective) {
    synchronized (lock) {
      if (installed == collective) {
        installed = null;
      }
    }
  }

  /** A waiting stream ended before any collective took it. */
  void forget(AcceptedStream stream) {
    synchronized (lock) {
      pending.remove(stream);
    }
  }

  /** Refuses every waiting stream and every later one (the shard is shutting down). */
  void close() {
    List<AcceptedStream> refused;
    synchronized (lock) {
      closed = true;
      refused = List.copyOf(pending);
      pending.clear();
    }
    refused.forEach(stream -> stream.reject(Status.UNAVAILABLE.withDescription("this shard is shutting down")));
  }
}
