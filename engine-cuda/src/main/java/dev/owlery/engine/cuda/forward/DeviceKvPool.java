package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * A slice's paged KV cache in device memory, F16: per layer one array of keys and one of values in
 * the {@code KvBlockPool} layout {@code [numBlocks, blockSize, numKvHeads, headDim]}. Which blocks
 * a sequence holds is the coordinator's block table; the pool only stores.
 */
public final class DeviceKvPool {

  private final int numBlocks;
  private final int blockSize;
  private final DevicePointer memory; // every layer's F16 keys then values, one buffer
  private final long layerBytes;

  DeviceKvPool(Device device, int numLayers, int numKvHeads, int headDim, int numBlocks, int blockSize) {
    if (numBlocks < 1 || blockSize < 1) {
      throw new IllegalArgumentException("a KV pool needs at least one block of at least one position. Given: "
          + "%d blocks of %d".formatted(numBlocks, blockSize));
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    // one layer's keys (or values): numBlocks * blockSize positions of numKvHeads * headDim halves
    this.layerBytes = Math.multiplyExact(2L,
        Math.multiplyExact((long) numBlocks * blockSize, (long) numKvHeads * headDim));
    this.memory = device.allocate(Math.multiplyExact(2L * numLayers, layerBytes));
  }

  public int numBlocks() {
    return numBlocks;
  }

  public int blockSize() {
    return blockSize;
  }

  /** The F16 keys of {@code layer}. */
  DevicePointer keys(int layer) {
    return memory.plus(2 * layer * layerBytes);
  }

  /** The F16 values of {@code layer}. */
  DevicePointer values(int layer) {
    return memory.plus((2L * layer + 1) * layerBytes);
  }
}
