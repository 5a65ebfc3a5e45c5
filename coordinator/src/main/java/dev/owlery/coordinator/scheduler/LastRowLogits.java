package dev.owlery.coordinator.scheduler;

import dev.owlery.engine.sampling.CandidateRow;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.sampling.TokenLogprobs;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * What a step gives one sequence to choose its next token from, in the form its sampler needs
 * ({@link Sampler#numCandidates}): the ranks' top candidates merged, when those pick exactly what
 * the whole row picks and hold every log-probability the request asked for; else the whole row,
 * gathered from the ranks' vocabulary slices. Used by one group loop's thread at a time.
 */
final class LastRowLogits {

  private static final int[] NONE_FORBIDDEN = new int[0];

  private final Sampler sampler;
  private final int numCandidates;
  private final int numTopLogprobs;
  /** The whole row, [vocabSize]; null when the sequence takes candidates. */
  private final float[] row;
  /** The merged candidates; null when the sequence takes the whole row. */
  private final CandidateRow candidates;

  /**
   * @param numTopLogprobs the alternatives the request wants with each token's log-probability, 0 without
   * @param candidatesAllowed false: the whole row even where candidates would do (a benchmark's baseline)
   */
  LastRowLogits(Sampler sampler, int numTopLogprobs, int vocabSize, boolean candidatesAllowed) {
    this.sampler = sampler;
    this.numTopLogprobs = numTopLogprobs;
    this.numCandidates = candidatesAllowed ? sampler.numCandidates(numTopLogprobs) : 0;
    this.row = numCandidates == 0 ? new float[vocabSize] : null;
    this.candidates = numCandidates == 0 ? null : new CandidateRow();
  }

  /** Candidates asked of each rank; 0 for the whole row. */
  int numCandidates() {
    return numCandidates;
  }

  /** The temperature the ranks keep the k-th candidate's ties under. */
  float candidateTemperature() {
    return sampler.candidateTemperature();
  }

  /** Forgets the last step's candidates; the ranks' answers to the next step follow. */
  void clear() {
    if (candidates != null) {
      candidates.clear();
    }
  }

  /** Copies a rank's slice of the row, {@code slices[from, from + width)}, to ids from {@code vocabStart}. */
  void addSlice(FloatBuffer slices, int from, int vocabStart, int width) {
    slices.get(from, row, vocabStart, width);
  }

  /** Adds a rank's {@code count} candidates from {@code from} and its slice's log-sum-exp. */
  void addCandidates(IntBuffer tokenIds, FloatBuffer logits, int from, int count, float sliceLogSumExp) {
    for (int i = from; i < from + count; i++) {
      candidates.add(tokenIds.get(i), logits.get(i));
    }
    candidates.addLogSumExp(sliceLogSumExp);
  }

  /** The sampler's next token from what the step delivered. */
  int sample() {
    return candidates != null ? sampler.sample(candidates) : sampler.sample(row, NONE_FORBIDDEN);
  }

  /** The log-probabilities of {@code tokenId} and the request's alternatives. */
  TokenLogprobs logprobs(int tokenId) {
    return candidates != null ? TokenLogprobs.of(candidates, tokenId, numTopLogprobs)
        : TokenLogprobs.of(row, 0, row.length, tokenId, numTopLogprobs);
  }
}
