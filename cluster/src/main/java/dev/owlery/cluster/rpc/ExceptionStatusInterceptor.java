package dev.owlery.cluster.rpc;

import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Turns exceptions escaping a service into statuses that say who must act (STYLE.md §5, §7):
 * {@link IllegalArgumentException} → INVALID_ARGUMENT, {@link IllegalStateException} →
 * FAILED_PRECONDITION, a thrown {@link StatusRuntimeException} keeps its status, anything else →
 * INTERNAL (our bug). The exception's message becomes the description. Covers exceptions thrown
 * from handlers and those passed to {@code StreamObserver.onError}. Each mapped exception
 * increments {@value #COUNTER} tagged with the method and the status code. Install one per
 * server ({@link GrpcServer} does).
 */
public final class ExceptionStatusInterceptor implements ServerInterceptor {

  /** Counter of exceptions turned into statuses; tags {@code method} and {@code code}. */
  public static final String COUNTER = "owlery.rpc.exceptions";

  private final MeterRegistry meters;

  public ExceptionStatusInterceptor(MeterRegistry meters) {
    this.meters = meters;
  }

  /** The status an exception stands for, its message as the description. */
  public static Status statusOf(Throwable error) {
    return switch (error) {
      case StatusRuntimeException e -> e.getStatus();
      case StatusException e -> e.getStatus();
      case IllegalArgumentException e -> Status.INVALID_ARGUMENT.withDescription(e.getMessage()).withCause(e);
      case IllegalStateException e -> Status.FAILED_PRECONDITION.withDescription(e.getMessage()).withCause(e);
      default ->
          Status.INTERNAL
              .withDescription("internal error: " + error.getClass().getName() + ": " + error.getMessage())
              .withCause(error);
    };
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
      ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
    MappingCall<ReqT, RespT> mappingCall = new MappingCall<>(call);
    ServerCall.Listener<ReqT> listener;
    try {
      listener = next.startCall(mappingCall, headers);
    } catch (RuntimeException e) {
      mappingCall.closeWith(e);
      return new ServerCall.Listener<>() {};
    }
    return new GuardedListener<>(listener, mappingCall);
  }

  private void count(ServerCall<?, ?> call, Status status) {
    Counter.builder(COUNTER)
        .description("Exceptions from RPC handlers turned into statuses")
        .tag("method", call.getMethodDescriptor().getFullMethodName())
        .tag("code", status.getCode().name())
        .register(meters)
        .increment();
  }

  /** Maps an UNKNOWN status carrying an exception (what onError with a plain exception gives). */
  private final class MappingCall<ReqT, RespT> extends ForwardingServerCall.SimpleForwardingServerCall<ReqT, RespT> {
    // Calls on one ServerCall are serialized by gRPC, but handlers may close from their own thread.
    private volatile boolean closed;

    MappingCall(ServerCall<ReqT, RespT> delegate) {
      super(delegate);
    }

    @Override
    public void close(Status status, Metadata trailers) {
      closed = true;
      if (status.getCode() == Status.Code.UNKNOWN && status.getCause() != null) {
        Status mapped = statusOf(status.getCause());
        count(delegate(), mapped);
        super.close(mapped, trailers);
      } else {
        super.close(status, trailers);
      }
    }

    void closeWith(RuntimeException error) {
      if (closed) {
        // The handler closed the call and then threw; the client already has its status.
        return;
      }
      Status status = statusOf(error);
      count(delegate(), status);
      closed = true;
      super.close(status, new Metadata());
    }
  }

  private static final class GuardedListener<ReqT>
      extends ForwardingServerCallListener.SimpleForwardingServerCallListener<ReqT> {
    private final MappingCall<ReqT, ?> call;

    GuardedListener(ServerCall.Listener<ReqT> delegate, MappingCall<ReqT, ?> call) {
      super(delegate);
      this.call = call;
    }

    @Override
    public void onMessage(ReqT message) {
      try {
        super.onMessage(message);
      } catch (RuntimeException e) {
        call.closeWith(e);
      }
    }

    @Override
    public void onHalfClose() {
      try {
        super.onHalfClose();
      } catch (RuntimeException e) {
        call.closeWith(e);
      }
    }

    @Override
    public void onReady() {
      try {
        super.onReady();
      } catch (RuntimeException e) {
        call.closeWith(e);
      }
    }
  }
}
