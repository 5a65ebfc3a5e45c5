package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.Contribution;
import io.grpc.Status;
import io.grpc.stub.CallStreamObserver;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The sending half of one peer stream, either side of it: the opener's request stream or the
 * acceptor's response stream (their message types differ, the contents do not). Writes are
 * serialized by one lock (a StreamObserver has one writer at a time) and wait for the transport to
 * be ready (flow control), bounded by the caller's deadline.
 *
 * @param <T> the stream's message type
 */
final class PeerStream<T> {

  private final CallStreamObserver<T> out;
  private final Function<Contribution, T> wrap;
  private final Consumer<Status> terminate;
  private final Object lock = new Object();
  /** Guarded by {@link #lock}. */
  private boolean closed;

  /**
   * @param wrap puts a contribution into this side's message type
   * @param terminate ends the call with a status, as this side can (cancel or onError)
   */
  PeerStream(CallStreamObserver<T> out, Function<Contribution, T> wrap, Consumer<Status> terminate) {
    this.out = out;
    this.wrap = wrap;
    this.terminate = terminate;
  }

  /** Sends a message at once (the handshake: first on the stream, so nothing is queued before it). */
  void sendNow(T message) {
    synchronized (lock) {
      if (closed) {
        throw new IllegalStateException("the stream is closed");
      }
      out.onNext(message);
    }
  }

  /**
   * Sends one contribution once the transport is ready. gRPC serializes the message inside
   * {@code onNext} on this thread, so the caller may reuse the buffer the contribution wraps as soon
   * as this returns (true of Netty; the in-process transport passes messages by reference and is
   * not used between shards).
   *
   * @throws TimeoutException when the stream is not ready by {@code deadlineNanos} (System.nanoTime)
   * @throws IllegalStateException when the stream is closed
   */
  void send(Contribution contribution, long deadlineNanos) throws TimeoutException, InterruptedException {
    T message = wrap.apply(contribution);
    synchronized (lock) {
      while (!closed && !out.isReady()) {
        long left = deadlineNanos - System.nanoTime();
        if (left <= 0) {
          throw new TimeoutException("the stream did not become ready");
        }
        TimeUnit.NANOSECONDS.timedWait(lock, left);
      }
      if (closed) {
        throw new IllegalStateException("the stream is closed");
      }
      out.onNext(message);
    }
  }

  /** The transport can take more; wakes a waiting {@link #send}. Called by gRPC. */
  void onReady() {
    synchronized (lock) {
      lock.notifyAll();
    }
  }

  /** The call ended from the other side or the transport; later sends fail. */
  void markClosed() {
    synchronized (lock) {
      closed = true;
      lock.notifyAll();
    }
  }

  /** Ends the call with {@code status} (the peer sees it) unless it already ended. */
  void close(Status status) {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      lock.notifyAll();
      try {
        terminate.accept(status);
      } catch (RuntimeException e) {
        // the call completed concurrently; nothing is left to end
      }
    }
  }
}
