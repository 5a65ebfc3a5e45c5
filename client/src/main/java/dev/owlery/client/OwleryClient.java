package dev.owlery.client;

import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.GetClusterStatusRequest;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.Model;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.TokenizeRequest;
import dev.owlery.proto.v1.TokenizeResponse;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The Owlery Java client: generation (blocking, streaming as an iterator or a callback,
 * asynchronous), tokenization and cluster information over {@code owlery.v1.Owlery}. Every call
 * carries a deadline (the builder's default, or {@link #withDeadline}); cancelling a stream, a
 * handle or a future cancels the call on the server. Failures are {@link OwleryException}s.
 * Thread-safe; share one client per target and close it when done. A coordinator started with API
 * keys needs {@link Builder#apiKey}; one serving TLS needs {@link Builder#trustedCertificates} (and
 * {@link Builder#clientCertificate} when it asks for client certificates). Given several coordinators
 * ({@link Builder#targets}), a call that one of them fails with UNAVAILABLE before it sent anything
 * is made again on the next; a Generate stream that has sent tokens is never repeated.
 *
 * <pre>{@code
 * try (OwleryClient owlery = OwleryClient.builder().target("localhost:7070").build()) {
 *   Completion c = owlery.generate(GenerateRequest.newBuilder()
 *       .setPromptText("<|image|>What is in the picture?")
 *       .addImages(Images.fromPath(Path.of("owl.jpg")))
 *       .build());
 * }
 * }</pre>
 */
public final class OwleryClient implements AutoCloseable {

  /** The channels this client opened, one per coordinator; empty when it was given one. */
  private final List<ManagedChannel> owned;
  /**
   * The channel calls go through: the coordinators' channels behind a {@link FailoverChannel}, with
   * the API key's header when there is one.
   */
  private final Channel calls;
  private final Duration deadline;
  private final CallFailures failures;

  private OwleryClient(List<ManagedChannel> owned, Channel calls, Duration deadline, boolean failsOver) {
    this.owned = List.copyOf(owned);
    this.calls = calls;
    this.deadline = deadline;
    this.failures = new CallFailures(calls.authority(), deadline, failsOver);
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * A view of this client whose calls use {@code callDeadline} (measured from each call's start);
   * it shares the channel, and closing it closes nothing.
   */
  public OwleryClient withDeadline(Duration callDeadline) {
    return new OwleryClient(List.of(), calls, Builder.requirePositive("deadline", callDeadline),
        failures.severalTargets());
  }

  /** The deadline each call gets. */
  public Duration deadline() {
    return deadline;
  }

  /**
   * Generates and waits for the whole completion.
   *
   * @throws OwleryException when the call fails, runs past its deadline or the thread is interrupted
   */
  public Completion generate(GenerateRequest request) {
    CompletionAccumulator accumulator = new CompletionAccumulator();
    try (GenerationStream stream = generateStream(request)) {
      while (stream.hasNext()) {
        accumulator.add(stream.next());
      }
    }
    return accumulator.complete();
  }

  /**
   * Starts a generation read as an iterator of messages in the caller's thread. Close the stream
   * when stopping early.
   */
  public GenerationStream generateStream(GenerateRequest request) {
    Context.CancellableContext context = Context.current().withCancellation();
    Context previous = context.attach();
    try {
      Iterator<GenerateResponse> responses = blockingStub().generate(request);
      return new GenerationStream(context, responses, failures);
    } catch (StatusRuntimeException e) {
      context.cancel(e);
      throw failures.of(e, 0);
    } finally {
      context.detach(previous);
    }
  }

  /**
   * Starts a generation delivered to {@code listener} on gRPC's threads; returns at once.
   *
   * @return a handle that cancels the call
   */
  public GenerationHandle generate(GenerateRequest request, GenerationListener listener) {
    ListenerObserver observer = new ListenerObserver(listener, failures);
    asyncStub().generate(request, observer);
    return observer;
  }

  /**
   * Starts a generation and returns its completion as a future. Cancelling the future cancels
   * the call on the server; a failure completes it with an {@link OwleryException}.
   */
  public CompletableFuture<Completion> generateAsync(GenerateRequest request) {
    CompletableFuture<Completion> future = new CompletableFuture<>();
    GenerationHandle handle =
        generate(
            request,
            new GenerationListener() {
              @Override
              public void onDelta(GenerateDelta delta) {}

              @Override
              public void onFinish(Completion completion) {
                future.complete(completion);
              }

              @Override
              public void onError(OwleryException error) {
                future.completeExceptionally(error);
              }
            });
    future.whenComplete(
        (completion, error) -> {
          if (error instanceof CancellationException) {
            handle.cancel();
          }
        });
    return future;
  }

  /** Tokenizes text the way Generate would. */
  public TokenizeResponse tokenize(TokenizeRequest request) {
    return unary(() -> blockingStub().tokenize(request));
  }

  /** The models the cluster serves. */
  public List<Model> listModels() {
    return unary(() -> blockingStub().listModels(ListModelsRequest.getDefaultInstance()).getModelsList());
  }

  /** The cluster's nodes, shard groups and scheduler queue. */
  public GetClusterStatusResponse getClusterStatus() {
    return unary(() -> blockingStub().getClusterStatus(GetClusterStatusRequest.getDefaultInstance()));
  }

  /** Closes the channels this client opened (waiting up to 5 s for calls to end); views close nothing. */
  @Override
  public void close() {
    owned.forEach(ManagedChannel::shutdown);
    try {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      for (ManagedChannel channel : owned) {
        if (!channel.awaitTermination(Math.max(0, until - System.nanoTime()), TimeUnit.NANOSECONDS)) {
          channel.shutdownNow();
        }
      }
    } catch (InterruptedException e) {
      owned.forEach(ManagedChannel::shutdownNow);
      Thread.currentThread().interrupt();
    }
  }

  private OwleryGrpc.OwleryBlockingStub blockingStub() {
    return OwleryGrpc.newBlockingStub(calls).withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
  }

  private OwleryGrpc.OwleryStub asyncStub() {
    return OwleryGrpc.newStub(calls).withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
  }

  private <T> T unary(Supplier<T> call) {
    try {
      return call.get();
    } catch (StatusRuntimeException e) {
      throw failures.of(e);
    }
  }

  /** Feeds a Generate stream to a listener and cancels the call on request. */
  private static final class ListenerObserver
      implements ClientResponseObserver<GenerateRequest, GenerateResponse>, GenerationHandle {
    private final GenerationListener listener;
    private final CallFailures failures;
    // gRPC calls onNext/onError/onCompleted one at a time, so the accumulator needs no lock.
    private final CompletionAccumulator accumulator = new CompletionAccumulator();
    private volatile ClientCallStreamObserver<GenerateRequest> call;

    ListenerObserver(GenerationListener listener, CallFailures failures) {
      this.listener = listener;
      this.failures = failures;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
      call = requestStream;
    }

    @Override
    public void onNext(GenerateResponse response) {
      GenerateDelta delta = accumulator.add(response);
      if (delta != null) {
        listener.onDelta(delta);
      }
    }

    @Override
    public void onError(Throwable error) {
      listener.onError(failures.of(error, accumulator.numTokens()));
    }

    @Override
    public void onCompleted() {
      Completion completion;
      try {
        completion = accumulator.complete();
      } catch (OwleryException e) {
        listener.onError(e);
        return;
      }
      listener.onFinish(completion);
    }

    @Override
    public void cancel() {
      call.cancel("cancelled by the client", null);
    }
  }

  /** Configures a client: where to connect, over plaintext or TLS, the API key and the default deadline. */
  public static final class Builder {
    /** The header a key travels in, as {@code Bearer KEY} (the HTTP API takes the same). */
    private static final Metadata.Key<String> AUTHORIZATION =
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private List<String> targets = List.of();
    private ManagedChannel channel;
    private String apiKey;
    private Duration deadline = Duration.ofMinutes(5);
    private int maxInboundMessageBytes = 16 << 20;
    private Path trustedCertificates;
    private Path clientCertificate;
    private Path clientKey;

    private Builder() {}

    /** The coordinator, "host:port" or a gRPC target URI; the client opens and owns a channel. */
    public Builder target(String address) {
      return targets(List.of(address));
    }

    /**
     * Several coordinators of one cluster, "host:port,host:port", tried in this order: the client opens and owns a channel
     * to each, sends a call to the one that last answered and, when that one fails it with
     * UNAVAILABLE before sending anything, to the next.
     */
    public Builder targets(String commaSeparated) {
      return targets(List.of(commaSeparated.split(",", -1)).stream().map(String::strip).toList());
    }

    /** Several coordinators as {@link #targets(String)} takes them: the list's order is the order tried. */
    public Builder targets(List<String> addresses) {
      if (addresses.isEmpty() || addresses.stream().anyMatch(address -> address == null || address.isBlank())) {
        throw new IllegalArgumentException("give at least one coordinator address, none blank. Given: " + addresses);
      }
      this.targets = List.copyOf(addresses);
      return this;
    }

    /** An existing channel (tests, other credentials); the caller keeps owning it. */
    public Builder channel(ManagedChannel existing) {
      this.channel = existing;
      return this;
    }

    /** Deadline of every call unless {@link OwleryClient#withDeadline} says otherwise; default 5 min. */
    public Builder defaultDeadline(Duration callDeadline) {
      this.deadline = requirePositive("defaultDeadline", callDeadline);
      return this;
    }

    /**
     * The API key every call carries, as metadata {@code authorization: Bearer KEY}; null or blank
     * sends none (a coordinator started without {@code --api-keys} needs none).
     */
    public Builder apiKey(String key) {
      if (key != null && !key.isBlank() && (key.strip().chars().anyMatch(c -> c < 0x21 || c > 0x7e))) {
        throw new IllegalArgumentException("an API key is printable ASCII without spaces (the key itself is not shown)");
      }
      this.apiKey = key == null || key.isBlank() ? null : key.strip();
      return this;
    }

    /**
     * Connects over TLS, accepting the coordinator only with a certificate for the target's host
     * that a CA in {@code caPem} (PEM) signed; without this and {@link #clientCertificate} the
     * client connects in plaintext.
     */
    public Builder trustedCertificates(Path caPem) {
      this.trustedCertificates = caPem;
      return this;
    }

    /**
     * Connects over TLS and presents {@code certificatePem} (PEM, the leaf first) with its {@code
     * keyPem} (PEM, PKCS#8), for a coordinator that requires client certificates ({@code
     * --tls-client-ca}). Without {@link #trustedCertificates} the coordinator's certificate is
     * checked against the JDK's default CAs.
     */
    public Builder clientCertificate(Path certificatePem, Path keyPem) {
      if ((certificatePem == null) != (keyPem == null)) {
        throw new IllegalArgumentException("a client certificate needs its key, and a key its certificate. Given: "
            + certificatePem + ", " + keyPem);
      }
      this.clientCertificate = certificatePem;
      this.clientKey = keyPem;
      return this;
    }

    /** Largest response message accepted; default 16 MiB. */
    public Builder maxInboundMessageBytes(int bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxInboundMessageBytes must be >= 1. Given: " + bytes);
      }
      this.maxInboundMessageBytes = bytes;
      return this;
    }

    public OwleryClient build() {
      if (targets.isEmpty() == (channel == null)) {
        throw new IllegalStateException("set exactly one of target and channel. Given targets=" + targets
            + ", channel=" + channel);
      }
      if (channel != null) {
        return new OwleryClient(List.of(), withKey(channel), deadline, false);
      }
      ChannelCredentials credentials = credentials();
      List<ManagedChannel> owned = targets.stream()
          .map(target -> Grpc.newChannelBuilder(target, credentials)
              .maxInboundMessageSize(maxInboundMessageBytes)
              .keepAliveTime(30, TimeUnit.SECONDS)
              .keepAliveTimeout(10, TimeUnit.SECONDS)
              .build())
          .toList();
      return new OwleryClient(owned, withKey(new FailoverChannel(owned)), deadline, owned.size() > 1);
    }

    /** Plaintext unless a CA or a client certificate was given. */
    private ChannelCredentials credentials() {
      if (trustedCertificates == null && clientCertificate == null) {
        return InsecureChannelCredentials.create();
      }
      TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
      try {
        if (trustedCertificates != null) {
          tls.trustManager(trustedCertificates.toFile());
        }
        if (clientCertificate != null) {
          tls.keyManager(clientCertificate.toFile(), clientKey.toFile());
        }
      } catch (IOException | IllegalArgumentException e) {
        throw new IllegalArgumentException("cannot read the TLS files %s: %s".formatted(
            Stream.of(trustedCertificates, clientCertificate, clientKey).filter(Objects::nonNull).toList(),
            e.getMessage()), e);
      }
      return tls.build();
    }

    private Channel withKey(Channel managed) {
      if (apiKey == null) {
        return managed;
      }
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + apiKey);
      return ClientInterceptors.intercept(managed, MetadataUtils.newAttachHeadersInterceptor(headers));
    }

    static Duration requirePositive(String name, Duration value) {
      if (value == null || value.isNegative() || value.isZero()) {
        throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
      }
      return value;
    }
  }
}
