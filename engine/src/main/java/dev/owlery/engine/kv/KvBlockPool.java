package dev.owlery.engine.kv;

/**
 * The KV cache memory of one tensor-parallel rank as a pool of {@code numBlocks} blocks of
 * {@code blockSize} positions, allocated once: per layer one array of keys and one of values, laid
 * out {@code [numBlocks, blockSize, numKvHeads, headDim]}, in the pool's {@link KvCacheDtype}. Sequences address it through a block
 * table ({@link PagedKvCache}); which sequence holds which block is decided by the owner of the
 * pool (the coordinator's block manager, checked by the shard).
 */
public final class KvBlockPool {

  /** The largest Java array the JVMs we run on allocate (a few header words below Integer.MAX_VALUE). */
  static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

  private final int numKvHeads;
  private final int headDim;
  private final int numBlocks;
  private final int blockSize;
  private final KvCacheDtype dtype;
  private final KvStorage storage;

  /**
   * Allocates the pool.
   *
   * @throws IllegalArgumentException when a size is < 1 or one layer's array would exceed the
   *     Java array limit (the message names every size)
   * @throws OutOfMemoryError when the heap cannot hold {@link #bytes(int, int, int, int, int, KvCacheDtype)}
   */
  public KvBlockPool(int numLayers, int numKvHeads, int headDim, int numBlocks, int blockSize, KvCacheDtype dtype) {
    if (numLayers < 1 || numKvHeads < 1 || headDim < 1 || numBlocks < 1 || blockSize < 1) {
      throw new IllegalArgumentException(
          "KV block pool sizes must be >= 1: numLayers=%d numKvHeads=%d headDim=%d numBlocks=%d blockSize=%d"
              .formatted(numLayers, numKvHeads, headDim, numBlocks, blockSize));
    }
    long perLayer = (long) numBlocks * blockSize * numKvHeads * headDim;
    if (perLayer > MAX_ARRAY_LENGTH) {
      throw new IllegalArgumentException(("a KV block pool layer of numBlocks %d x blockSize %d x numKvHeads %d x headDim %d "
          + "= %d elements exceeds the Java array limit of %d elements; use fewer blocks or more tensor-parallel ranks")
          .formatted(numBlocks, blockSize, numKvHeads, headDim, perLayer, MAX_ARRAY_LENGTH));
    }
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.dtype = dtype;
    this.storage = KvStorage.allocate(dtype, numLayers, (int) perLayer);
  }

  /** Bytes a pool of these sizes allocates (keys and values, every layer). */
  public static long bytes(int numLayers, int numKvHeads, int headDim, int numBlocks, int blockSize, KvCacheDtype dtype) {
    return 2L * dtype.bytesPerElement() * numLayers * numBlocks * blockSize * numKvHeads * headDim;
  }

  /** Bytes this pool holds. */
  public long bytes() {
    return bytes(numLayers(), numKvHeads, headDim, numBlocks, blockSize, dtype);
  }

  public int numLayers() {
    return storage.numLayers();
  }

  public KvCacheDtype dtype() {
    return dtype;
  }

  public int numKvHeads() {
    return numKvHeads;
  }

  public int headDim() {
    return headDim;
  }

  public int numBlocks() {
    return numBlocks;
  }

  /** Positions per block. */
  public int blockSize() {
    return blockSize;
  }

  /** An empty cache of one sequence with an empty block table, to be filled by its owner. */
  public PagedKvCache newSequenceCache() {
    return new PagedKvCache(this);
  }

  KvStorage storage() {
    return storage;
  }

  /** Index of element 0 of {@code kvHead} at {@code offset} within {@code block}. */
  int index(int block, int offset, int kvHead) {
    return ((block * blockSize + offset) * numKvHeads + kvHead) * headDim;
  }
}
