package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.forward.DeviceDecoderSlice;
import dev.owlery.engine.cuda.forward.DeviceKvPool;
import dev.owlery.engine.cuda.forward.SliceStep;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.Embedding;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.PagedKvCache;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence run greedily through a single-rank slice, on a device or on the CPU, with the same
 * block table: the prompt in chunks of the slice's step capacity (every position's logits kept),
 * then {@code numNew} tokens, each the first maximum of the logits before it, fed back as its
 * embedding.
 *
 * @param promptLogits {@code [numPrompt, vocabSize]}
 * @param tokenLogits per generated token the logits it was picked from ({@code [vocabSize]}, the
 *     first are the prompt's last row)
 */
public record GreedyRun(float[] promptLogits, float[][] tokenLogits, int[] generated) {

  /** A prompt: its input rows {@code [numPrompt, hiddenSize]}, their modalities, and the pool blocks of the sequence. */
  public record Prompt(float[] inputsEmbeds, Modality[] modalities, int[] blockTable) {

    public int numPrompt() {
      return modalities.length;
    }
  }

  /** The step of one sequence in the device forward, or the CPU's, taking rows {@code [first, first + n)}. */
  private interface Forward {
    void run(float[] embeds, int offset, Modality[] modalities, int first, int n, LogitRows rows, float[] logits);
  }

  public static GreedyRun onDevice(DeviceDecoderSlice slice, DeviceKvPool pool, Embedding embedTokens, Prompt prompt,
      int numNew) {
    int hidden = slice.config().hiddenSize();
    Forward forward = deviceForward(slice, pool, prompt);
    return run(forward, slice.stepCapacity(), slice.localVocabSize(), hidden, embedTokens, prompt, numNew, null);
  }

  /**
   * As {@link #onDevice}, but feeding {@code tokens} instead of this slice's own greedy picks: for a
   * tensor-parallel rank, whose logits are only its vocabulary slice. {@code generated} is then
   * {@code tokens}.
   */
  public static GreedyRun forcedOnDevice(DeviceDecoderSlice slice, DeviceKvPool pool, Embedding embedTokens,
      Prompt prompt, int[] tokens) {
    int hidden = slice.config().hiddenSize();
    Forward forward = deviceForward(slice, pool, prompt);
    return run(forward, slice.stepCapacity(), slice.localVocabSize(), hidden, embedTokens, prompt, tokens.length,
        tokens);
  }

  /** One sequence's step on the device slice: rows {@code [offset, offset + n)} of the input at positions from {@code first}. */
  private static Forward deviceForward(DeviceDecoderSlice slice, DeviceKvPool pool, Prompt prompt) {
    int hidden = slice.config().hiddenSize();
    return (embeds, offset, modalities, first, n, rows, logits) -> {
      float[] chunk = Arrays.copyOfRange(embeds, offset * hidden, (offset + n) * hidden);
      Modality[] chunkModalities = Arrays.copyOfRange(modalities, offset, offset + n);
      slice.forward(new SliceStep(List.of(new SliceStep.Sequence(prompt.blockTable(), first, n, rows)), chunk,
          chunkModalities), pool, logits);
    };
  }

  /** The CPU's DecoderSlice over an engine pool (its dtype the caller's choice) holding the prompt's block table. */
  public static GreedyRun onCpu(DecoderSlice slice, KvBlockPool pool, Embedding embedTokens, Prompt prompt, int numNew) {
    PagedKvCache cache = pool.newSequenceCache();
    for (int block : prompt.blockTable()) {
      cache.appendBlock(block);
    }
    int hidden = slice.config().hiddenSize();
    int vocab = slice.localVocabSize();
    Forward forward = (embeds, offset, modalities, first, n, rows, logits) -> slice.forward(embeds, offset * hidden,
        Arrays.copyOfRange(modalities, offset, offset + n), n, cache, rows, logits, vocab, 0);
    return run(forward, slice.stepCapacity(), vocab, hidden, embedTokens, prompt, numNew, null);
  }

  /** The prompt, then {@code numNew} tokens: {@code forced[i]} when given, else the first maximum. */
  private static GreedyRun run(Forward forward, int capacity, int vocab, int hidden, Embedding embedTokens,
      Prompt prompt, int numNew, int[] forced) {
    int numPrompt = prompt.numPrompt();
    float[] promptLogits = new float[numPrompt * vocab];
    float[] chunkLogits = new float[capacity * vocab];
    for (int done = 0; done < numPrompt; ) {
      int n = Math.min(capacity, numPrompt - done);
      forward.run(prompt.inputsEmbeds(), done, prompt.modalities(), done, n, LogitRows.ALL, chunkLogits);
      System.arraycopy(chunkLogits, 0, promptLogits, done * vocab, n * vocab);
      done += n;
    }
    float[][] tokenLogits = new float[numNew][];
    int[] generated = new int[numNew];
    float[] logits = Arrays.copyOfRange(promptLogits, (numPrompt - 1) * vocab, numPrompt * vocab);
    float[] embed = new float[hidden];
    Modality[] text = {Modality.TEXT};
    for (int i = 0; i < numNew; i++) {
      tokenLogits[i] = logits;
      generated[i] = forced != null ? forced[i] : argmax(logits);
      if (i + 1 < numNew) {
        embedTokens.lookup(generated[i], embed, 0);
        logits = new float[vocab];
        forward.run(embed, 0, text, numPrompt + i, 1, LogitRows.ALL, logits);
      }
    }
    return new GreedyRun(promptLogits, tokenLogits, generated);
  }

  /** The first maximum, as greedy sampling picks it. */
  public static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  /** Max |a - b| over the prompt's and every generated token's logits; NaN when either holds a NaN. */
  public double maxAbsDifference(GreedyRun other) {
    double max = maxAbs(promptLogits, other.promptLogits, 0);
    for (int i = 0; i < Math.min(tokenLogits.length, other.tokenLogits.length); i++) {
      max = maxAbs(tokenLogits[i], other.tokenLogits[i], max);
    }
    return max;
  }

  private static double maxAbs(float[] a, float[] b, double max) {
    for (int i = 0; i < a.length; i++) {
      double d = Math.abs((double) a[i] - b[i]);
      if (Double.isNaN(d)) {
        return Double.NaN;
      }
      max = Math.max(max, d);
    }
    return max;
  }
}
