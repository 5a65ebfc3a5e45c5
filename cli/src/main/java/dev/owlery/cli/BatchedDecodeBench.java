package dev.owlery.cli;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.decoder.DecoderBatch;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.AttentionTime;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.kv.PagedKvCache;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Batched decode as a shard worker runs it, in process: {@code sequences} sequences, each prefilled
 * with {@code promptTokens} tokens, then {@code steps} steps of one new token per sequence in one
 * {@link DecoderBatch} through a {@link DecoderSlice} over a paged F16 KV cache — what
 * llama.cpp's {@code llama-batched-bench -npp P -ntg S -npl N} times as its generation speed. The
 * time of the steps is split into matmuls, attention and the rest (norms, RoPE, the KV writes,
 * sampling).
 */
final class BatchedDecodeBench {

  private static final int BLOCK_SIZE = 16;

  /** Tokens per second of the timed steps, and the shares of their wall time in matmuls and attention. */
  record Result(double tokensPerSecond, double matmulShare, double attentionShare) {}

  private BatchedDecodeBench() {}

  static Result run(Path file, WeightFormat format, LlamaConfig config, Kernels kernels, int sequences,
      int promptTokens, int steps) {
    MatmulTimedKernels timed = new MatmulTimedKernels(kernels);
    int capacity = Math.max(sequences, promptTokens);
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(file).withWeightFormat(format)) {
      DecoderSlice slice = new DecoderSlice(checkpoint, config, Collective.single(), timed, capacity);
      int blocksPerSequence = Math.ceilDiv(promptTokens + steps + 4, BLOCK_SIZE);
      KvBlockPool pool = slice.newKvBlockPool(sequences * blocksPerSequence, BLOCK_SIZE, KvCacheDtype.F16);
      PagedKvCache[] caches = new PagedKvCache[sequences];
      for (int s = 0; s < sequences; s++) {
        caches[s] = pool.newSequenceCache();
        for (int b = 0; b < blocksPerSequence; b++) {
          caches[s].appendBlock(s * blocksPerSequence + b);
        }
      }
      int hidden = config.hiddenSize();
      int vocab = slice.localVocabSize();
      float[] inputs = new float[capacity * hidden];
      float[] logits = new float[sequences * vocab];
      Modality[] text = new Modality[capacity];
      Arrays.fill(text, Modality.TEXT);
      SplittableRandom random = new SplittableRandom(11);
      for (int s = 0; s < sequences; s++) {
        for (int t = 0; t < promptTokens; t++) {
          slice.embed(random.nextInt(3, config.vocabSize()), inputs, t * hidden);
        }
        slice.forward(inputs, 0, text, promptTokens, caches[s], LogitRows.LAST, logits, vocab, s * vocab);
      }
      DecoderBatch batch = new DecoderBatch(sequences);
      int warmUp = Math.min(2, steps);
      long start = 0;
      for (int step = 0; step < warmUp + steps; step++) {
        if (step == warmUp) {
          timed.reset();
          AttentionTime.reset();
          start = System.nanoTime();
        }
        batch.clear();
        for (int s = 0; s < sequences; s++) {
          slice.embed(slice.vocabStart() + Sampler.argmax(logits, s * vocab, vocab), inputs, s * hidden);
          batch.add(caches[s], 1, LogitRows.LAST);
        }
        slice.forward(batch, inputs, 0, text, logits, vocab, 0);
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      return new Result(sequences * steps / seconds, timed.nanos / 1e9 / seconds, AttentionTime.nanos() / 1e9 / seconds);
    }
  }

  /** The given kernels, with the wall time of their matmul calls counted. Used by one thread. */
  private static final class MatmulTimedKernels extends ForwardingKernels {

    private final Kernels kernels;
    private long nanos;

    MatmulTimedKernels(Kernels kernels) {
      this.kernels = kernels;
    }

    void reset() {
      nanos = 0;
    }

    @Override
    protected Kernels delegate() {
      return kernels;
    }

    @Override
    public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
      long start = System.nanoTime();
      kernels.matmul(w, x, xOffset, out, outOffset, numTokens);
      nanos += System.nanoTime() - start;
    }
  }
}
