package dev.owlery.engine.decoder;

/**
 * RoPE in the HF rotate-half convention (spec §4): dims {@code d} and {@code d + headDim/2} of each
 * head form a pair; {@code inv_freq_j = 1 / theta^(2j / headDim)} in fp32 from the config (the
 * checkpoint's {@code rotary_emb.inv_freq} is ignored); the cos/sin table is built once for every
 * position below {@code maxPositions}, in fp32, as transformers 4.31 does at construction.
 */
public final class RotaryEmbedding {

  private final int headDim;
  private final int half;
  private final int maxPositions;
  private final float[] cos; // [maxPositions, headDim / 2]
  private final float[] sin; // [maxPositions, headDim / 2]

  public RotaryEmbedding(int headDim, float theta, int maxPositions) {
    this.headDim = headDim;
    this.half = headDim / 2;
    this.maxPositions = maxPositions;
    this.cos = new float[Math.multiplyExact(maxPositions, half)];
    this.sin = new float[cos.length];
    for (int j = 0; j < half; j++) {
      float exponent = (float) (2 * j) / (float) headDim;
      float invFreq = (float) (1.0 / (float) Math.pow(theta, exponent));
      for (int p = 0; p < maxPositions; p++) {
        float angle = (float) p * invFreq;
        cos[p * half + j] = (float) Math.cos(angle);
        sin[p * half + j] = (float) Math.sin(angle);
      }
    }
  }

  public int maxPositions() {
    return maxPositions;
  }

  /** Rotates {@code numHeads} consecutive heads of {@code x} from {@code offset} for {@code position}, in place. */
  public void apply(float[] x, int offset, int numHeads, int position) {
    if (position < 0 || position >= maxPositions) {
      throw new IllegalArgumentException("position %d is outside max_position_embeddings %d".formatted(position, maxPositions));
    }
    int table = position * half;
    for (int h = 0; h < numHeads; h++) {
      int base = offset + h * headDim;
      for (int j = 0; j < half; j++) {
        float x1 = x[base + j];
        float x2 = x[base + j + half];
        float c = cos[table + j];
        float s = sin[table + j];
        // x' = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
        x[base + j] = x1 * c + (-x2) * s;
        x[base + j + half] = x2 * c + x1 * s;
      }
    }
  }
}
