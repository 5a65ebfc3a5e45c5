package dev.owlery.shard.worker;

import dev.owlery.engine.cuda.forward.DeviceDecoderSlice;
import dev.owlery.engine.cuda.forward.DeviceKvPool;
import dev.owlery.engine.cuda.forward.SliceStep;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.decoder.Embedding;
import dev.owlery.engine.decoder.Modality;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A slice on a CUDA device (or its CPU twin): a {@link DeviceDecoderSlice} with its paged F16
 * {@link DeviceKvPool}, whose block tables are the shard's ({@link HeldSequences}); the embedding
 * lookup stays on the host (one row per token, copied up with the step's inputs). Closing it closes
 * the device, freeing every buffer of the slice.
 */
final class DeviceSliceForward implements SliceForward<DeviceSliceForward.Sequence> {

  /** A sequence's block table and cached positions; the device pool holds its keys and values. */
  static final class Sequence implements SequenceBlocks {
    private int[] blockTable = new int[4];
    private int numBlocks;
    private int length;

    @Override
    public int length() {
      return length;
    }

    @Override
    public int numBlocks() {
      return numBlocks;
    }

    @Override
    public int blockId(int i) {
      if (i < 0 || i >= numBlocks) {
        throw new IndexOutOfBoundsException("block table index %d of %d".formatted(i, numBlocks));
      }
      return blockTable[i];
    }

    @Override
    public void appendBlock(int blockId) {
      if (numBlocks == blockTable.length) {
        blockTable = Arrays.copyOf(blockTable, 2 * numBlocks);
      }
      blockTable[numBlocks++] = blockId;
    }

    int[] blockTable() {
      return Arrays.copyOf(blockTable, numBlocks);
    }
  }

  private final Device device;
  private final DeviceDecoderSlice slice;
  private final DeviceKvPool pool;
  private final Embedding embedTokens;
  private final long kvCacheBytes;

  DeviceSliceForward(Device device, DeviceDecoderSlice slice, DeviceKvPool pool, Embedding embedTokens,
      long kvCacheBytes) {
    this.device = device;
    this.slice = slice;
    this.pool = pool;
    this.embedTokens = embedTokens;
    this.kvCacheBytes = kvCacheBytes;
  }

  @Override
  public Sequence newSequence() {
    return new Sequence();
  }

  @Override
  public int numKvBlocks() {
    return pool.numBlocks();
  }

  @Override
  public long kvCacheBytes() {
    return kvCacheBytes;
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
    embedTokens.lookup(tokenId, out, outOffset);
  }

  @Override
  public void forward(List<Rows<Sequence>> rows, float[] inputs, Modality[] modalities, float[] logits) {
    List<SliceStep.Sequence> sequences = new ArrayList<>(rows.size());
    for (Rows<Sequence> s : rows) {
      sequences.add(new SliceStep.Sequence(s.sequence().blockTable(), s.sequence().length(), s.numRows(),
          s.logitRows()));
    }
    slice.forward(new SliceStep(sequences, inputs, modalities), pool, logits);
    for (Rows<Sequence> s : rows) {
      s.sequence().length += s.numRows();
    }
  }

  /** 0: the device runs the lm_head in the same stream of launches as the layers. */
  @Override
  public long lastLmHeadNanos() {
    return 0;
  }

  @Override
  public void close() {
    device.close();
  }
}
