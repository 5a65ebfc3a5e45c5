package dev.owlery.engine.vision;

/**
 * The abstractor's fixed sin-cos position tables (MAE recipe, spec §3), computed in float32 exactly
 * as the official numpy code does: {@code q_pos_embed} (1-D, one row per learnable query) and
 * {@code k_pos_embed} (2-D over the patch grid, zero CLS row first).
 *
 * <p>Used only when a checkpoint lacks the stored buffers: stored ones win (spec §11 pitfall 16).
 */
public final class SinCosPositionEmbedding {

  private SinCosPositionEmbedding() {}

  /**
   * {@code P_q}: {@code numQueries} rows of {@code hiddenSize} floats, row m = {@code sincos1d(hiddenSize, m)}.
   *
   * @throws IllegalArgumentException when hiddenSize is not even
   */
  public static float[] queryTable(int hiddenSize, int numQueries) {
    requirePositive("numQueries", numQueries);
    if (hiddenSize <= 0 || hiddenSize % 2 != 0) {
      throw new IllegalArgumentException(
          "the 1-D sin-cos table needs a positive even width, got hidden_size %d".formatted(hiddenSize));
    }
    float[] table = new float[numQueries * hiddenSize];
    for (int m = 0; m < numQueries; m++) {
      sincos1d(hiddenSize, m, table, m * hiddenSize);
    }
    return table;
  }

  /**
   * {@code P_k}: {@code 1 + gridSize²} rows of {@code hiddenSize} floats; row 0 (CLS) is zero, row
   * {@code 1 + r·gridSize + c} for the patch at row r, column c is
   * {@code [sincos1d(hiddenSize/2, c) ‖ sincos1d(hiddenSize/2, r)]} — the column comes first (numpy
   * meshgrid is x-first).
   *
   * @throws IllegalArgumentException when hiddenSize is not a multiple of 4
   */
  public static float[] keyTable(int hiddenSize, int gridSize) {
    requirePositive("gridSize", gridSize);
    if (hiddenSize <= 0 || hiddenSize % 4 != 0) {
      throw new IllegalArgumentException(
          "the 2-D sin-cos table needs a positive width divisible by 4, got hidden_size %d".formatted(hiddenSize));
    }
    int half = hiddenSize / 2;
    float[] table = new float[(1 + gridSize * gridSize) * hiddenSize];
    for (int r = 0; r < gridSize; r++) {
      for (int c = 0; c < gridSize; c++) {
        int row = (1 + r * gridSize + c) * hiddenSize;
        sincos1d(half, c, table, row);
        sincos1d(half, r, table, row + half);
      }
    }
    return table;
  }

  /**
   * Writes {@code [sin(pos·ω_0) .. sin(pos·ω_{w/2-1}), cos(pos·ω_0) .. cos(pos·ω_{w/2-1})]} with
   * {@code ω_k = 1 / 10000^(k / (w/2))}, every step rounded to float32 as numpy float32 does.
   */
  static void sincos1d(int width, int pos, float[] out, int outOffset) {
    int half = width / 2;
    float position = pos;
    for (int k = 0; k < half; k++) {
      float exponent = (float) k / (float) half;
      float omega = 1f / (float) Math.pow(10000.0, exponent);
      float angle = position * omega;
      out[outOffset + k] = (float) Math.sin(angle);
      out[outOffset + half + k] = (float) Math.cos(angle);
    }
  }

  private static void requirePositive(String what, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException("%s must be positive, got %d".formatted(what, value));
    }
  }
}
