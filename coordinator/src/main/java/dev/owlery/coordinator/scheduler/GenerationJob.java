package dev.owlery.coordinator.scheduler;

import com.google.protobuf.ByteString;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One accepted request handed to the scheduler.
 *
 * @param sequenceId the coordinator's id of the sequence on the shards
 * @param imageEmbeddings per image, its F32 {@code [numImageTokens, hiddenSize]} rows, little-endian
 * @param arrivalNanos {@link System#nanoTime()} when the request arrived
 * @param cancelled completed when the client cancelled (or its deadline passed)
 */
public record GenerationJob(long sequenceId, SequenceRequest request, List<ByteString> imageEmbeddings,
    long arrivalNanos, GenerationSink sink, CompletableFuture<Void> cancelled) {

  public GenerationJob {
    imageEmbeddings = List.copyOf(imageEmbeddings);
  }
}
