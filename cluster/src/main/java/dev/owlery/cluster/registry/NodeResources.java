package dev.owlery.cluster.registry;

import java.io.Serializable;

/**
 * What a node may use for its work.
 *
 * @param numCores processor cores, >= 1
 * @param memoryBytes memory for weights, activations and KV cache, >= 0 (the JVM's heap)
 * @param device the accelerator a shard worker serves from, or a vision worker's tower runs on; null on the CPU
 */
public record NodeResources(int numCores, long memoryBytes, NodeDevice device) implements Serializable {

  /** A node computing on the CPU. */
  public NodeResources(int numCores, long memoryBytes) {
    this(numCores, memoryBytes, null);
  }

  public NodeResources {
    if (numCores < 1) {
      throw new IllegalArgumentException("numCores must be >= 1. Given: " + numCores);
    }
    if (memoryBytes < 0) {
      throw new IllegalArgumentException("memoryBytes must be >= 0. Given: " + memoryBytes);
    }
  }

  /** The cores and maximum heap-plus-direct memory this JVM sees. */
  public static NodeResources ofThisProcess() {
    return ofThisProcess(null);
  }

  /** As {@link #ofThisProcess()}, computing on {@code device} (null: the CPU). */
  public static NodeResources ofThisProcess(NodeDevice device) {
    return new NodeResources(Runtime.getRuntime().availableProcessors(), Runtime.getRuntime().maxMemory(), device);
  }
}
