package dev.owlery.visionworker;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Where a worker runs the vision tower: the pixel values of one call's images (CHW, as the
 * preprocessor produces them) to their visual embeddings, on the host ({@link HostImageEncoder}) or
 * on a device in passes of several images ({@link DeviceImageEncoder}).
 */
interface ImageEncoder extends AutoCloseable {

  /** Each image's visual rows in order, and the time the vision transformer and the abstractor took for them. */
  record Encoded(List<float[]> visualEmbeds, long visionNs, long abstractorNs) {}

  /**
   * Encodes {@code pixelValues}; the future completes with them all, or fails with the reason
   * ({@link java.util.concurrent.RejectedExecutionException} when there is no room to queue them).
   */
  CompletableFuture<Encoded> encode(List<float[]> pixelValues);

  /** Visual rows per image: {@code numQueries + 1}. */
  int numVisualTokens();

  /** Width of each visual row: the LLM's {@code hidden_size}. */
  int hiddenSize();

  @Override
  void close();
}
