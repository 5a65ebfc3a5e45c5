package dev.owlery.coordinator.api;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.owlery.cluster.rpc.ExceptionStatusInterceptor;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.engine.testing.AllocationBudget;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import io.grpc.Status;

/**
 * Any GenerateRequest the wire can carry (the fuzz bytes parsed as one) is either accepted or
 * answered INVALID_ARGUMENT or NOT_FOUND, as owlery.proto documents: never another status, which
 * would be a bug of ours (INTERNAL) or a wrong promise to the client. Corpus:
 * {@code testdata/fuzz/generate-request/} (docs/fuzzing.md).
 */
class RequestValidatorFuzzTest {

  private static final long BUDGET_BYTES = 64L << 20;
  private static final ServedModel MODEL = ServedModel.load(Fixtures.tinyOwl2(), "tiny-owl2");
  private static final RequestValidator VALIDATOR =
      new RequestValidator(MODEL, new ApiLimits(256, 8, 1 << 20, 256), () -> 7L);

  @FuzzTest
  void validate(byte[] bytes) {
    GenerateRequest request;
    try {
      request = GenerateRequest.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      return; // gRPC refuses bytes that are not a GenerateRequest before any handler runs
    }
    try {
      AllocationBudget.enforce(BUDGET_BYTES, arena -> VALIDATOR.validate(request));
    } catch (RuntimeException e) {
      Status.Code code = ExceptionStatusInterceptor.statusOf(e).getCode();
      if (code != Status.Code.INVALID_ARGUMENT && code != Status.Code.NOT_FOUND) {
        throw e;
      }
    }
  }
}
