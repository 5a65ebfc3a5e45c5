package dev.owlery.cluster.rpc;

import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.TokenizeRequest;
import dev.owlery.proto.v1.TokenizeResponse;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The server helper on a real Netty server on 127.0.0.1:0, reached through {@link GrpcChannels}. */
class GrpcServerTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private final SimpleMeterRegistry meters = new SimpleMeterRegistry();
  private GrpcServer server;
  private ManagedChannel channel;

  /** Fails Tokenize according to the text, the way a coordinator's validation would. */
  private static final class FailingOwlery extends OwleryGrpc.OwleryImplBase {
    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> response) {
      switch (request.getText()) {
        case "bad" -> throw new IllegalArgumentException("`text` must not be 'bad'. Given: 'bad'");
        case "early" -> throw new IllegalStateException("model not loaded yet");
        case "busy" -> throw Status.UNAVAILABLE.withDescription("draining").asRuntimeException();
        case "bug" -> throw new ArithmeticException("/ by zero");
        default -> {
          response.onNext(TokenizeResponse.newBuilder().addTokenIds(1).build());
          response.onCompleted();
        }
      }
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> response) {
      if (request.getPromptText().equals("hang")) {
        response.onNext(GenerateResponse.getDefaultInstance());
        return;
      }
      response.onNext(GenerateResponse.getDefaultInstance());
      response.onError(new IllegalArgumentException("`max_new_tokens` must be >= 1. Given: 0"));
    }
  }

  @BeforeEach
  void startServer() {
    server = cleanup.register(GrpcServer.netty(GrpcServerConfig.loopback(), meters, List.of(new FailingOwlery())));
    server.start();
    channel = cleanup.register(GrpcChannels.forTarget("127.0.0.1:" + server.port(), GrpcChannelConfig.defaults()));
  }

  private ServingStatus health(String service) {
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build())
        .getStatus();
  }

  private StatusRuntimeException tokenizeFailure(String text) {
    OwleryGrpc.OwleryBlockingStub stub = OwleryGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS);
    try {
      stub.tokenize(TokenizeRequest.newBuilder().setText(text).build());
    } catch (StatusRuntimeException e) {
      return e;
    }
    throw new AssertionError("tokenize('" + text + "') succeeded; expected a failure");
  }

  private double exceptionCount(String method, Status.Code code) {
    var counter =
        meters.find(ExceptionStatusInterceptor.COUNTER).tag("method", method).tag("code", code.name()).counter();
    return counter == null ? 0 : counter.count();
  }

  @Test
  void healthIsServingAfterStartAndNotServingOnDrain() {
    assertThat(server.port()).isPositive();
    assertThat(server.serviceNames()).containsExactly("owlery.v1.Owlery");
    assertThat(health("")).isEqualTo(ServingStatus.SERVING);
    assertThat(health("owlery.v1.Owlery")).isEqualTo(ServingStatus.SERVING);

    server.markNotServing();

    assertThat(health("")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(health("owlery.v1.Owlery")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThatThrownBy(() -> health("owlery.v9.Nothing"))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
  }

  @Test
  void interceptorMapsExceptionsToStatusesAndCountsThem() {
    StatusRuntimeException bad = tokenizeFailure("bad");
    assertThat(bad.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(bad.getStatus().getDescription()).isEqualTo("`text` must not be 'bad'. Given: 'bad'");

    StatusRuntimeException early = tokenizeFailure("early");
    assertThat(early.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
    assertThat(early.getStatus().getDescription()).isEqualTo("model not loaded yet");

    StatusRuntimeException busy = tokenizeFailure("busy");
    assertThat(busy.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(busy.getStatus().getDescription()).isEqualTo("draining");

    StatusRuntimeException bug = tokenizeFailure("bug");
    assertThat(bug.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL);
    assertThat(bug.getStatus().getDescription()).isEqualTo("internal error: java.lang.ArithmeticException: / by zero");

    String tokenize = "owlery.v1.Owlery/Tokenize";
    assertThat(exceptionCount(tokenize, Status.Code.INVALID_ARGUMENT)).isEqualTo(1);
    assertThat(exceptionCount(tokenize, Status.Code.FAILED_PRECONDITION)).isEqualTo(1);
    assertThat(exceptionCount(tokenize, Status.Code.UNAVAILABLE)).isEqualTo(1);
    assertThat(exceptionCount(tokenize, Status.Code.INTERNAL)).isEqualTo(1);
  }

  @Test
  void closeCancelsCallsStillRunningAfterTheGracePeriod() throws Exception {
    GrpcServerConfig quickGrace =
        new GrpcServerConfig("127.0.0.1", 0, 1 << 20, ofSeconds(10), ofSeconds(5), ofSeconds(5), Duration.ofMillis(200),
            InsecureServerCredentials.create());
    GrpcServer hanging = GrpcServer.netty(quickGrace, meters, List.of(new FailingOwlery())).start();
    ManagedChannel toHanging =
        cleanup.register(GrpcChannels.forTarget("127.0.0.1:" + hanging.port(), GrpcChannelConfig.defaults()));
    CompletableFuture<Void> started = new CompletableFuture<>();
    CompletableFuture<Throwable> failed = new CompletableFuture<>();
    OwleryGrpc.newStub(toHanging)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .generate(
            GenerateRequest.newBuilder().setPromptText("hang").build(),
            new StreamObserver<>() {
              @Override
              public void onNext(GenerateResponse value) {
                started.complete(null);
              }

              @Override
              public void onError(Throwable t) {
                failed.complete(t);
              }

              @Override
              public void onCompleted() {
                failed.complete(new AssertionError("the hanging call completed"));
              }
            });
    started.get(5, TimeUnit.SECONDS);

    hanging.close();

    // Past the grace period the transport resets the stream; services that want their callers
    // to retry fail their calls with UNAVAILABLE while draining, before close().
    assertThat(Status.fromThrowable(failed.get(5, TimeUnit.SECONDS)).getCode()).isEqualTo(Status.Code.CANCELLED);
  }

  @Test
  void interceptorMapsAnExceptionPassedToOnError() {
    var stream =
        OwleryGrpc.newBlockingStub(channel)
            .withDeadlineAfter(5, TimeUnit.SECONDS)
            .generate(GenerateRequest.newBuilder().setPromptText("hi").build());

    assertThat(stream.next()).isEqualTo(GenerateResponse.getDefaultInstance());
    assertThatThrownBy(stream::hasNext)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).isEqualTo("`max_new_tokens` must be >= 1. Given: 0");
            });
    assertThat(exceptionCount("owlery.v1.Owlery/Generate", Status.Code.INVALID_ARGUMENT)).isEqualTo(1);
  }
}
