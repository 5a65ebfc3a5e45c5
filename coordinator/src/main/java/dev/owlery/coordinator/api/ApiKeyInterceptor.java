package dev.owlery.coordinator.api;

import dev.owlery.coordinator.scheduler.GenerationMetrics;
import dev.owlery.proto.v1.OwleryGrpc;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Guards the {@code owlery.v1.Owlery} service (not the health service, which stays open for probes)
 * with {@link ApiKeys}: a call must carry metadata {@code authorization: Bearer KEY} with a known key,
 * else UNAUTHENTICATED; a key over its requests/s, or (Generate) with its generated tokens/min spent,
 * gets RESOURCE_EXHAUSTED naming the limit. The call runs with its key in {@link #CALLER}. Generate
 * calls refused here are counted in {@link GenerationMetrics} like those refused later, by key id.
 * Neither the key nor the header is ever logged or echoed.
 */
public final class ApiKeyInterceptor implements ServerInterceptor {

  /** The key of the current call; {@link ApiKey#NONE} where keys are not required. */
  static final Context.Key<ApiKey> CALLER = Context.keyWithDefault("owlery-api-key", ApiKey.NONE);

  /** The header the key travels in (the HTTP API's too), as {@code Bearer KEY}. */
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private static final String BEARER = "Bearer ";
  private static final String GENERATE = OwleryGrpc.getGenerateMethod().getFullMethodName();

  private final ApiKeys keys;
  private final GenerationMetrics metrics;

  public ApiKeyInterceptor(ApiKeys keys, GenerationMetrics metrics) {
    this.keys = keys;
    this.metrics = metrics;
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(ServerCall<ReqT, RespT> call, Metadata headers,
      ServerCallHandler<ReqT, RespT> next) {
    boolean generate = call.getMethodDescriptor().getFullMethodName().equals(GENERATE);
    String header = headers.get(AUTHORIZATION);
    // The scheme is case-insensitive (RFC 9110 §11.1), as the HTTP API will take it.
    if (header == null || !header.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
      return refuse(call, generate, ApiKey.NONE.id(), null, Status.UNAUTHENTICATED.withDescription(
          "this coordinator requires an API key: send the metadata 'authorization: Bearer KEY' "
              + "(owlery --api-key KEY, or OWLERY_API_KEY)"));
    }
    ApiKey key = keys.find(header.substring(BEARER.length()).strip());
    if (key == null) {
      return refuse(call, generate, "unknown", null, Status.UNAUTHENTICATED.withDescription(
          "the API key is not one this coordinator accepts"));
    }
    String overRequests = key.admitRequest();
    if (overRequests != null) {
      return refuse(call, generate, key.id(), GenerationMetrics.Limit.KEY_REQUESTS_PER_SECOND,
          Status.RESOURCE_EXHAUSTED.withDescription(overRequests));
    }
    String overTokens = generate ? key.admitGeneration() : null;
    if (overTokens != null) {
      return refuse(call, true, key.id(), GenerationMetrics.Limit.KEY_TOKENS_PER_MINUTE,
          Status.RESOURCE_EXHAUSTED.withDescription(overTokens));
    }
    return Contexts.interceptCall(Context.current().withValue(CALLER, key), call, headers, next);
  }

  private <ReqT, RespT> ServerCall.Listener<ReqT> refuse(ServerCall<ReqT, RespT> call, boolean generate, String keyId,
      GenerationMetrics.Limit limit, Status status) {
    if (generate) {
      if (limit != null) {
        metrics.rejected(limit);
      }
      metrics.finished(status.getCode(), keyId);
    }
    call.close(status, new Metadata());
    return new ServerCall.Listener<>() {};
  }
}
