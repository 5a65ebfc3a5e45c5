package dev.owlery.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A channel over several coordinators' channels: a call goes to the coordinator that last
 * answered, and one that fails with UNAVAILABLE before it delivered anything (no headers, no
 * message: the coordinator was down, draining or had no shard group) is started again, with the
 * same headers and request messages and within the same deadline, on the next coordinator, each
 * tried at most once. A call that delivered a message is never repeated: a Generate stream that
 * sent tokens would send them again. With one channel this is that channel.
 */
final class FailoverChannel extends Channel {

  private final List<Channel> channels;
  private final String authority;
  /** Index of the coordinator new calls go to first. */
  private final AtomicInteger preferred = new AtomicInteger();

  FailoverChannel(List<? extends Channel> channels) {
    if (channels.isEmpty()) {
      throw new IllegalArgumentException("a failover channel needs at least one channel");
    }
    this.channels = List.copyOf(channels);
    this.authority = String.join(", ", this.channels.stream().map(Channel::authority).toList());
  }

  @Override
  public <Q, R> ClientCall<Q, R> newCall(MethodDescriptor<Q, R> method, CallOptions options) {
    if (channels.size() == 1) {
      return channels.getFirst().newCall(method, options);
    }
    return new FailoverCall<>(method, options);
  }

  /** Every coordinator's address, comma-separated. */
  @Override
  public String authority() {
    return authority;
  }

  /**
   * One call, replayed on the next coordinator while its attempts fail UNAVAILABLE having delivered
   * nothing. What the caller did (start, request, send, half-close) is recorded to replay; the
   * listener sees one attempt's headers, messages and close.
   */
  private final class FailoverCall<Q, R> extends ClientCall<Q, R> {
    private final MethodDescriptor<Q, R> method;
    private final CallOptions options;
    private final int first = preferred.get();
    private final List<Q> sent = new ArrayList<>();
    // Guarded by this.
    private Listener<R> listener;
    private Metadata headers;
    private int requested;
    private boolean halfClosed;
    private boolean cancelled;
    private int attempt;
    private ClientCall<Q, R> current;

    FailoverCall(MethodDescriptor<Q, R> method, CallOptions options) {
      this.method = method;
      this.options = options;
    }

    @Override
    public synchronized void start(Listener<R> callListener, Metadata callHeaders) {
      this.listener = callListener;
      this.headers = callHeaders;
      startAttempt();
    }

    /** Starts the current attempt on its coordinator and replays what the caller did so far. */
    private void startAttempt() {
      int index = (first + attempt) % channels.size();
      ClientCall<Q, R> call = channels.get(index).newCall(method, options);
      current = call;
      Metadata copy = new Metadata();
      copy.merge(headers);
      call.start(new AttemptListener(call, index), copy);
      if (requested > 0) {
        call.request(requested);
      }
      for (Q message : sent) {
        call.sendMessage(message);
      }
      if (halfClosed) {
        call.halfClose();
      }
    }

    @Override
    public synchronized void request(int numMessages) {
      requested += numMessages;
      current.request(numMessages);
    }

    @Override
    public synchronized void cancel(String message, Throwable cause) {
      cancelled = true;
      if (current != null) {
        current.cancel(message, cause);
      }
    }

    @Override
    public synchronized void halfClose() {
      halfClosed = true;
      current.halfClose();
    }

    @Override
    public synchronized void sendMessage(Q message) {
      sent.add(message);
      current.sendMessage(message);
    }

    @Override
    public synchronized boolean isReady() {
      return current.isReady();
    }

    /**
     * Retries on the next coordinator when {@code call} (the current attempt) failed UNAVAILABLE
     * having delivered nothing; returns whether it did.
     */
    private synchronized boolean retried(ClientCall<Q, R> call, Status status, boolean delivered) {
      if (call != current || delivered || cancelled || status.getCode() != Status.Code.UNAVAILABLE
          || attempt + 1 >= channels.size()) {
        return false;
      }
      attempt++;
      preferred.compareAndSet(first, (first + attempt) % channels.size());
      startAttempt();
      return true;
    }

    /** Passes one attempt's events on, holding back a close that is retried. */
    private final class AttemptListener extends Listener<R> {
      private final ClientCall<Q, R> call;
      private final int index;
      private volatile boolean delivered;

      AttemptListener(ClientCall<Q, R> call, int index) {
        this.call = call;
        this.index = index;
      }

      @Override
      public void onHeaders(Metadata responseHeaders) {
        delivered = true;
        listener.onHeaders(responseHeaders);
      }

      @Override
      public void onMessage(R message) {
        delivered = true;
        preferred.set(index);
        listener.onMessage(message);
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        if (!retried(call, status, delivered)) {
          if (status.isOk()) {
            preferred.set(index);
          }
          listener.onClose(status, trailers);
        }
      }

      @Override
      public void onReady() {
        listener.onReady();
      }
    }
  }
}
