package dev.owlery.coordinator.scheduler;

import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import io.grpc.Status;

/**
 * Where a sequence's output goes: deltas, then exactly one finish or one error. Called by one
 * thread at a time, never after the finish or the error.
 */
public interface GenerationSink {

  void onDelta(GenerateDelta delta);

  void onFinish(GenerateFinish finish);

  void onError(Status status);
}
