package dev.owlery.coordinator.http;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.coordinator.api.ApiKeyInterceptor;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.ListModelsResponse;
import dev.owlery.proto.v1.Model;
import dev.owlery.proto.v1.OwleryGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.netty.channel.Channel;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What each route does: generating requests are parsed (off the event loop) and sent as one {@code
 * Generate} call, whose answer a {@link GenerateExchange} writes back; {@code /v1/models} is {@code
 * ListModels}; {@code /health} is the standard health check of the coordinator. Every call carries the
 * caller's {@code Authorization} header as its metadata and a deadline.
 */
final class OpenAiRoutes {

  private static final Logger LOG = Logger.getLogger(OpenAiRoutes.class.getName());
  private static final Duration QUERY_TIMEOUT = Duration.ofSeconds(10);
  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private final ManagedChannel owlery;
  private final OpenAiRequestParser parser;
  private final ExecutorService parsing;
  private final String modelName;
  private final Duration requestTimeout;

  OpenAiRoutes(ManagedChannel owlery, OpenAiRequestParser parser, ExecutorService parsing, String modelName,
      Duration requestTimeout) {
    this.owlery = owlery;
    this.parser = parser;
    this.parsing = parsing;
    this.modelName = modelName;
    this.requestTimeout = requestTimeout;
  }

  void serve(Channel channel, String method, String path, String authorization, byte[] body, boolean keepAlive) {
    String allowed = switch (path) {
      case "/health", "/v1/models" -> "GET";
      case "/v1/chat/completions", "/v1/completions" -> "POST";
      default -> null;
    };
    if (allowed == null) {
      HttpResponses.sendError(channel, OpenAiError.notFound(method, path), keepAlive);
      return;
    }
    if (!allowed.equals(method)) {
      HttpResponses.sendError(channel, OpenAiError.methodNotAllowed(method, path, allowed), keepAlive);
      return;
    }
    switch (path) {
      case "/health" -> health(channel, keepAlive);
      case "/v1/models" -> models(channel, authorization, keepAlive);
      case "/v1/chat/completions" -> parsing.execute(() -> generate(channel, authorization, keepAlive,
          () -> parser.parseChat(body)));
      default -> parsing.execute(() -> generate(channel, authorization, keepAlive,
          () -> parser.parseCompletion(body)));
    }
  }

  private void generate(Channel channel, String authorization, boolean keepAlive,
      Supplier<OpenAiRequest> parse) {
    OpenAiRequest request;
    try {
      request = parse.get();
    } catch (OpenAiRequestException e) {
      HttpResponses.sendError(channel, OpenAiError.badRequest(e), keepAlive);
      return;
    } catch (RuntimeException e) {
      // A bug of ours (the fuzz test looks for these): the caller still gets an answer, not a hung connection.
      LOG.log(Level.WARNING, "parsing an HTTP request body failed", e);
      HttpResponses.sendError(channel, OpenAiError.of(Status.INTERNAL.withDescription(
          "the server failed to read this request (a bug); the log has the details")), false);
      return;
    }
    String id = (request.kind() == OpenAiRequest.Kind.CHAT ? "chatcmpl-" : "cmpl-")
        + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
    OpenAiResponses responses = new OpenAiResponses(request, id, Instant.now().getEpochSecond(), modelName);
    OwleryGrpc.OwleryStub stub = withKey(OwleryGrpc.newStub(owlery), authorization)
        .withDeadlineAfter(requestTimeout.toNanos(), TimeUnit.NANOSECONDS);
    stub.generate(request.generate(), new GenerateExchange(channel, request, responses, keepAlive));
  }

  private void models(Channel channel, String authorization, boolean keepAlive) {
    withKey(OwleryGrpc.newStub(owlery), authorization).withDeadlineAfter(QUERY_TIMEOUT.toNanos(), TimeUnit.NANOSECONDS)
        .listModels(ListModelsRequest.getDefaultInstance(), new Answer<>(channel, keepAlive) {
          @Override
          public void onNext(ListModelsResponse response) {
            ObjectNode body = JSON.objectNode().put("object", "list");
            ArrayNode data = body.putArray("data");
            for (Model model : response.getModelsList()) {
              data.addObject().put("id", model.getName()).put("object", "model").put("created", 0)
                  .put("owned_by", "owlery");
            }
            HttpResponses.sendJson(channel, 200, body, keepAlive);
          }
        });
  }

  private void health(Channel channel, boolean keepAlive) {
    HealthGrpc.newStub(owlery).withDeadlineAfter(QUERY_TIMEOUT.toNanos(), TimeUnit.NANOSECONDS)
        .check(HealthCheckRequest.getDefaultInstance(), new Answer<>(channel, keepAlive) {
          @Override
          public void onNext(HealthCheckResponse response) {
            if (response.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
              HttpResponses.sendJson(channel, 200, JSON.objectNode().put("status", "ok"), keepAlive);
            } else {
              HttpResponses.sendError(channel, OpenAiError.of(Status.UNAVAILABLE.withDescription(
                  "the coordinator is " + response.getStatus() + "; retry on another")), keepAlive);
            }
          }
        });
  }

  /** The stub sending {@code authorization} (the HTTP header, {@code Bearer KEY}) as metadata, when given. */
  private static <S extends AbstractStub<S>> S withKey(S stub, String authorization) {
    if (authorization == null) {
      return stub;
    }
    Metadata headers = new Metadata();
    headers.put(ApiKeyInterceptor.AUTHORIZATION, authorization);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
  }

  /** A unary call's answer: {@link #onNext} writes the response; an error is written in OpenAI's shape. */
  private abstract static class Answer<T> implements StreamObserver<T> {

    private final Channel channel;
    private final boolean keepAlive;

    Answer(Channel channel, boolean keepAlive) {
      this.channel = channel;
      this.keepAlive = keepAlive;
    }

    @Override
    public void onError(Throwable error) {
      HttpResponses.sendError(channel, OpenAiError.of(Status.fromThrowable(error)), keepAlive);
    }

    @Override
    public void onCompleted() {}
  }
}
