package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.PagedKvCache;
import java.util.List;

/**
 * A step's keys and values written into the paged F16 cache, against the engine's
 * {@link PagedKvCache#write}: the whole pool is compared (keys then values), so a write to a wrong
 * slot shows both where it landed and where it is missing.
 *
 * @param key [rows, numKvHeads * headDim] float32, as is value
 */
record KvAppendCase(PagedLayout layout, int[] rowSeq, int[] rowPos, float[] key, float[] value) implements KernelCase {

  @Override
  public String kernel() {
    return PtxKernels.KV_APPEND.name();
  }

  @Override
  public String sizes() {
    return "rows=%d seqs=%d kvHeads=%d headDim=%d blockSize=%d poolBlocks=%d".formatted(rowSeq.length,
        layout.tables().length, layout.numKvHeads(), layout.headDim(), layout.blockSize(), layout.numBlocks());
  }

  @Override
  public Tolerance tolerance() {
    return Tolerance.exact("float32 to F16 rounds to nearest even on both sides (Float.floatToFloat16, cvt.rn.f16.f32)");
  }

  @Override
  public Expected expected() {
    KvBlockPool pool = layout.enginePool();
    List<PagedKvCache> caches = layout.engineCaches(pool);
    int kvWidth = layout.kvWidth();
    int headDim = layout.headDim();
    int elements = layout.poolElements();
    float[] pools = new float[2 * elements]; // keys, then values; never written slots stay 0
    float[] row = new float[headDim];
    for (int t = 0; t < rowSeq.length; t++) {
      PagedKvCache cache = caches.get(rowSeq[t]);
      for (int h = 0; h < layout.numKvHeads(); h++) {
        int from = t * kvWidth + h * headDim;
        cache.write(0, rowPos[t], h, key, from, value, from);
        int index = cache.index(rowPos[t], h); // the engine's own slot arithmetic
        cache.layer(0).readKeys(h, rowPos[t], 1, row, 0);
        System.arraycopy(row, 0, pools, index, headDim);
        cache.layer(0).readValues(h, rowPos[t], 1, row, 0);
        System.arraycopy(row, 0, pools, elements + index, headDim);
      }
    }
    float[] scale = new float[pools.length];
    for (int i = 0; i < pools.length; i++) {
      scale[i] = Math.abs(pools[i]);
    }
    return new Expected(pools, scale);
  }

  @Override
  public float[] runOn(Device gpu) {
    int elements = layout.poolElements();
    DevicePointer kPool = gpu.allocate(2L * elements);
    DevicePointer vPool = gpu.allocate(2L * elements);
    long total = (long) rowSeq.length * layout.kvWidth();
    int grid = (int) Math.min(1024, (total + PtxKernels.KV_APPEND.blockSize() - 1) / PtxKernels.KV_APPEND.blockSize());
    gpu.launch(PtxKernels.KV_APPEND, grid, 1, kPool, vPool, gpu.upload(key), gpu.upload(value),
        gpu.upload(layout.flatTables()), gpu.upload(rowSeq), gpu.upload(rowPos), rowSeq.length, layout.numKvHeads(),
        layout.headDim(), layout.blockSize(), layout.maxBlocksPerSeq());
    float[] pools = new float[2 * elements];
    widen(gpu.downloadShorts(kPool, elements), pools, 0);
    widen(gpu.downloadShorts(vPool, elements), pools, elements);
    return pools;
  }

  private static void widen(short[] halves, float[] dst, int offset) {
    for (int i = 0; i < halves.length; i++) {
      dst[offset + i] = Float.float16ToFloat(halves[i]);
    }
  }
}
