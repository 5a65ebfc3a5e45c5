package dev.owlery.shard.worker;

import dev.owlery.engine.decoder.DecoderBatch;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.PagedKvCache;
import java.util.List;

/** A slice on the CPU: the engine's {@link DecoderSlice} over a {@link KvBlockPool} on the heap. */
final class CpuSliceForward implements SliceForward<CpuSliceForward.Sequence> {

  /** A sequence's {@link PagedKvCache}; the forward advances its length. */
  record Sequence(PagedKvCache cache) implements SequenceBlocks {
    @Override
    public int length() {
      return cache.length();
    }

    @Override
    public int numBlocks() {
      return cache.numBlocks();
    }

    @Override
    public int blockId(int i) {
      return cache.blockId(i);
    }

    @Override
    public void appendBlock(int blockId) {
      cache.appendBlock(blockId);
    }
  }

  private final DecoderSlice slice;
  private final KvBlockPool pool;
  private final DecoderBatch batch;

  CpuSliceForward(DecoderSlice slice, KvBlockPool pool, int maxNumSequences) {
    this.slice = slice;
    this.pool = pool;
    this.batch = new DecoderBatch(maxNumSequences);
  }

  @Override
  public Sequence newSequence() {
    return new Sequence(pool.newSequenceCache());
  }

  @Override
  public int numKvBlocks() {
    return pool.numBlocks();
  }

  @Override
  public long kvCacheBytes() {
    return pool.bytes();
  }

  @Override
  public int vocabStart() {
    return slice.vocabStart();
  }

  @Override
  public int localVocabSize() {
    return slice.localVocabSize();
  }

  @Override
  public void embed(int tokenId, float[] out, int outOffset) {
    slice.embed(tokenId, out, outOffset);
  }

  @Override
  public void forward(List<Rows<Sequence>> rows, float[] inputs, Modality[] modalities, float[] logits) {
    batch.clear();
    for (Rows<Sequence> sequence : rows) {
      batch.add(sequence.sequence().cache(), sequence.numRows(), sequence.logitRows());
    }
    slice.forward(batch, inputs, 0, modalities, logits, slice.localVocabSize(), 0);
  }

  @Override
  public long lastLmHeadNanos() {
    return slice.lastLmHeadNanos();
  }

  @Override
  public void close() {
    // the pool and the slice are heap memory
  }
}
