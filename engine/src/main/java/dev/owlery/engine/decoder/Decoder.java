package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.KvCache;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.parallel.InProcessGroup;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The whole decoder in one process: N tensor-parallel {@link DecoderSlice}s joined by an
 * {@link InProcessGroup}, rank 0 on the calling thread and ranks 1..N-1 on threads owned here. The
 * single-process reference the cluster must reproduce (DESIGN.md §3). One thread drives it.
 */
public final class Decoder implements AutoCloseable {

  /**
   * Tokens per pass through the layers; longer prompts run in chunks (the KV cache carries them).
   * 512, the coordinator's default --max-num-batched-tokens and llama.cpp's micro-batch: every pass
   * reads (and the panel kernels widen) every weight once, which at 64 tokens per pass was 14% of
   * a prefill's matmul time (16% of a 512-token prefill's samples on 2 threads) and at 512 is 2%.
   */
  public static final int DEFAULT_STEP_CAPACITY = 512;
  /** Bound on each all-reduce wait between in-process ranks. */
  private static final Duration ALL_REDUCE_TIMEOUT = Duration.ofSeconds(60);

  private final LlamaConfig config;
  private final DecoderSlice[] slices;
  private final InProcessGroup group;
  private final ExecutorService rankThreads;
  private final RankStep[] rankSteps;

  private Decoder(LlamaConfig config, DecoderSlice[] slices, InProcessGroup group) {
    this.config = config;
    this.slices = slices;
    this.group = group;
    int n = slices.length;
    this.rankThreads = n == 1 ? null : Executors.newFixedThreadPool(n - 1, r -> {
      Thread t = new Thread(r, "owlery-rank");
      t.setDaemon(true);
      return t;
    });
    this.rankSteps = new RankStep[n];
    for (int r = 0; r < n; r++) {
      rankSteps[r] = new RankStep(slices[r]);
    }
  }

  /** Loads the decoder of {@code config} from {@code checkpoint} split over {@code tensorParallelSize} ranks. */
  public static Decoder load(Checkpoint checkpoint, ModelConfig config, int tensorParallelSize, Kernels kernels) {
    return load(checkpoint, config.text(), tensorParallelSize, kernels, DEFAULT_STEP_CAPACITY);
  }

  /** As {@link #load(Checkpoint, ModelConfig, int, Kernels)} with an explicit tokens-per-pass capacity. */
  public static Decoder load(Checkpoint checkpoint, LlamaConfig config, int tensorParallelSize, Kernels kernels,
      int stepCapacity) {
    InProcessGroup group = new InProcessGroup(tensorParallelSize, ALL_REDUCE_TIMEOUT);
    DecoderSlice[] slices = new DecoderSlice[tensorParallelSize];
    for (int r = 0; r < tensorParallelSize; r++) {
      Collective collective = group.member(r);
      slices[r] = new DecoderSlice(checkpoint, config, collective, kernels, stepCapacity);
    }
    return new Decoder(config, slices, group);
  }

  public LlamaConfig config() {
    return config;
  }

  public int tensorParallelSize() {
    return slices.length;
  }

  /** Writes the embeddings of {@code count} ids from {@code tokenIds[from]} as rows of {@code out} from {@code outOffset}. */
  public void embed(int[] tokenIds, int from, int count, float[] out, int outOffset) {
    for (int i = 0; i < count; i++) {
      embed(tokenIds[from + i], out, outOffset + i * config.hiddenSize());
    }
  }

  /** Writes the embedding of one token id at {@code out[outOffset]}. */
  public void embed(int tokenId, float[] out, int outOffset) {
    slices[0].embed(tokenId, out, outOffset);
  }

  /** A new empty sequence holding up to max_position_embeddings positions in a {@link KvCacheDtype#DEFAULT} cache. */
  public DecoderSequence newSequence() {
    return newSequence(config.maxPositions(), KvCacheDtype.DEFAULT);
  }

  /** A new empty sequence holding up to {@code capacity} positions in a {@link KvCacheDtype#DEFAULT} cache. */
  public DecoderSequence newSequence(int capacity) {
    return newSequence(capacity, KvCacheDtype.DEFAULT);
  }

  /** A new empty sequence holding up to max_position_embeddings positions, its KV cache stored as {@code kvCacheDtype}. */
  public DecoderSequence newSequence(KvCacheDtype kvCacheDtype) {
    return newSequence(config.maxPositions(), kvCacheDtype);
  }

  /** A new empty sequence holding up to {@code capacity} positions, its KV cache stored as {@code kvCacheDtype}. */
  public DecoderSequence newSequence(int capacity, KvCacheDtype kvCacheDtype) {
    KvCache[] caches = new KvCache[slices.length];
    for (int r = 0; r < slices.length; r++) {
      caches[r] = slices[r].newKvCache(capacity, kvCacheDtype);
    }
    return new DecoderSequence(caches);
  }

  /**
   * Runs {@code numTokens} embedding rows (from {@code inputsOffset} in {@code inputsEmbeds}, with
   * one modality each) at the sequence's next positions and writes logits: {@code [numTokens,
   * vocabSize]} for {@link LogitRows#ALL}, {@code [vocabSize]} of the last row for
   * {@link LogitRows#LAST}. After a failure the sequence is unusable.
   */
  public void forward(DecoderSequence sequence, float[] inputsEmbeds, int inputsOffset, Modality[] modalities,
      int numTokens, LogitRows rows, float[] logits) {
    int needed = Math.multiplyExact(rows == LogitRows.ALL ? numTokens : 1, config.vocabSize());
    if (logits.length < needed || modalities.length < numTokens
        || inputsEmbeds.length < inputsOffset + (long) numTokens * config.hiddenSize()) {
      throw new IllegalArgumentException(
          "forward of %d tokens needs %d logits (given %d), %d modalities (given %d), %d input floats (given %d)"
              .formatted(numTokens, needed, logits.length, numTokens, modalities.length,
                  (long) numTokens * config.hiddenSize(), inputsEmbeds.length - inputsOffset));
    }
    if (numTokens < 1 || sequence.length() + numTokens > sequence.capacity()) {
      throw new IllegalArgumentException("cannot run %d tokens after %d positions: the sequence holds %d"
          .formatted(numTokens, sequence.length(), sequence.capacity()));
    }
    for (int r = 0; r < slices.length; r++) {
      rankSteps[r].prepare(sequence.cache(r), inputsEmbeds, inputsOffset, modalities, numTokens, rows, logits);
    }
    if (rankThreads == null) {
      rankSteps[0].run();
      return;
    }
    runAllRanks();
  }

  private void runAllRanks() {
    Future<?>[] futures = new Future<?>[slices.length];
    for (int r = 1; r < slices.length; r++) {
      futures[r] = rankThreads.submit(rankSteps[r]);
    }
    RuntimeException failure = null;
    try {
      rankSteps[0].run();
    } catch (RuntimeException e) {
      failure = e;
      group.abort();
    }
    for (int r = 1; r < slices.length; r++) {
      try {
        futures[r].get(ALL_REDUCE_TIMEOUT.toMillis() * 2, TimeUnit.MILLISECONDS);
      } catch (ExecutionException e) {
        group.abort();
        failure = failure != null ? failure : new IllegalStateException("rank " + r + " failed: " + e.getCause(), e.getCause());
      } catch (TimeoutException e) {
        group.abort();
        failure = failure != null ? failure : new IllegalStateException("rank " + r + " did not finish its step", e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        group.abort();
        failure = failure != null ? failure : new IllegalStateException("interrupted waiting for rank " + r, e);
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public void close() {
    if (rankThreads != null) {
      rankThreads.shutdownNow();
    }
  }

  /** One rank's share of a forward call, reused across calls. */
  private static final class RankStep implements Runnable {
    private final DecoderSlice slice;
    private KvCache cache;
    private float[] inputs;
    private int inputsOffset;
    private Modality[] modalities;
    private int numTokens;
    private LogitRows rows;
    private float[] logits;

    RankStep(DecoderSlice slice) {
      this.slice = slice;
    }

    void prepare(KvCache cache, float[] inputs, int inputsOffset, Modality[] modalities, int numTokens,
        LogitRows rows, float[] logits) {
      this.cache = cache;
      this.inputs = inputs;
      this.inputsOffset = inputsOffset;
      this.modalities = modalities;
      this.numTokens = numTokens;
      this.rows = rows;
      this.logits = logits;
    }

    @Override
    public void run() {
      slice.forward(inputs, inputsOffset, modalities, numTokens, cache, rows, logits,
          slice.config().vocabSize(), slice.vocabStart());
    }
  }
}
