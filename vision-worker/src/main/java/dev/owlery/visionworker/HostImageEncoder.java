package dev.owlery.visionworker;

import dev.owlery.engine.vision.VisionTower;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The vision tower on the host: each image through the engine's {@link VisionTower} on the calling
 * thread (the worker's encode threads), one after another; every matmul splits over the kernel threads.
 */
final class HostImageEncoder implements ImageEncoder {

  private final VisionTower tower;

  HostImageEncoder(VisionTower tower) {
    this.tower = tower;
  }

  @Override
  public CompletableFuture<Encoded> encode(List<float[]> pixelValues) {
    long visionNs = 0;
    long abstractorNs = 0;
    List<float[]> visualEmbeds = new ArrayList<>(pixelValues.size());
    try {
      for (float[] image : pixelValues) {
        long visionStart = System.nanoTime();
        float[] features = tower.encoder().forward(image);
        long abstractorStart = System.nanoTime();
        visualEmbeds.add(tower.abstractor().forward(features));
        long end = System.nanoTime();
        visionNs += abstractorStart - visionStart;
        abstractorNs += end - abstractorStart;
      }
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
    return CompletableFuture.completedFuture(new Encoded(List.copyOf(visualEmbeds), visionNs, abstractorNs));
  }

  @Override
  public int numVisualTokens() {
    return tower.numVisualTokens();
  }

  @Override
  public int hiddenSize() {
    return tower.hiddenSize();
  }

  @Override
  public void close() {}
}
