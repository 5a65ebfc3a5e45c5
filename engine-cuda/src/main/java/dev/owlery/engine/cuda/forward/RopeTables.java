package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.decoder.RotaryEmbedding;
import java.util.Arrays;

/**
 * The {@code rope} kernel's cos and sin tables, {@code [maxPositions, headDim / 2]} float32 each,
 * read out of the engine's own {@link RotaryEmbedding} (rotating the unit pair (1, 0) at position p
 * gives (cos, sin) exactly), so that device and CPU rotate with one table.
 */
public record RopeTables(float[] cos, float[] sin) {

  public static RopeTables of(RotaryEmbedding rope, int headDim) {
    int half = headDim / 2;
    int maxPositions = rope.maxPositions();
    float[] cos = new float[Math.multiplyExact(maxPositions, half)];
    float[] sin = new float[cos.length];
    float[] unit = new float[headDim];
    for (int p = 0; p < maxPositions; p++) {
      Arrays.fill(unit, 0, half, 1f);
      Arrays.fill(unit, half, headDim, 0f);
      rope.apply(unit, 0, 1, p); // (1, 0) -> (1 c - 0 s, 0 c + 1 s) = (c, s)
      System.arraycopy(unit, 0, cos, p * half, half);
      System.arraycopy(unit, half, sin, p * half, half);
    }
    return new RopeTables(cos, sin);
  }
}
