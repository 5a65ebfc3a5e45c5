package dev.owlery.engine.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

class SinCosPositionEmbeddingTest {

  /** Spot checks of spec §3 are quoted to 6 digits; float32 sin/cos of |x| ≤ 32 are good to ~2e-6. */
  private static final float SPOT_CHECK_TOLERANCE = 2e-6f;

  @Test
  void keyTableOfThe7bGeometryEncodesColumnThenRow() {
    int d = 1024;
    float[] pk = SinCosPositionEmbedding.keyTable(d, 32);

    assertThat(pk).hasSize(1025 * d);
    // row 35 = patch 34 = (row 1, col 2): first half encodes the column, second half the row
    assertThat(pk[35 * d]).isCloseTo((float) Math.sin(2), within(SPOT_CHECK_TOLERANCE));
    assertThat(pk[35 * d + 256]).isCloseTo((float) Math.cos(2), within(SPOT_CHECK_TOLERANCE));
    assertThat(pk[35 * d + 512]).isCloseTo((float) Math.sin(1), within(SPOT_CHECK_TOLERANCE));
    assertThat(pk[35 * d + 768]).isCloseTo((float) Math.cos(1), within(SPOT_CHECK_TOLERANCE));
    for (int i = 0; i < d; i++) {
      assertThat(pk[i]).as("CLS row element %d", i).isZero();
    }
    // last patch (31, 31): the 256-wide halves use ω_k = 10000^(-k/256)
    int last = 1024 * d;
    assertThat(pk[last + 1]).isCloseTo((float) Math.sin(31 * Math.pow(10000, -1.0 / 256)), within(SPOT_CHECK_TOLERANCE));
    assertThat(pk[last + 512 + 256 + 1])
        .isCloseTo((float) Math.cos(31 * Math.pow(10000, -1.0 / 256)), within(SPOT_CHECK_TOLERANCE));
  }

  @Test
  void queryTableOfThe7bGeometry() {
    float[] pq = SinCosPositionEmbedding.queryTable(1024, 64);

    assertThat(pq).hasSize(64 * 1024);
    assertThat(pq[1024]).isCloseTo(0.841471f, within(SPOT_CHECK_TOLERANCE));
    assertThat(pq[1024 + 1]).isCloseTo(0.831705f, within(SPOT_CHECK_TOLERANCE));
    assertThat(pq[1024 + 512]).isCloseTo((float) Math.cos(1), within(SPOT_CHECK_TOLERANCE));
    for (int i = 0; i < 512; i++) {
      assertThat(pq[i]).as("row 0 sin %d", i).isZero();
      assertThat(pq[512 + i]).as("row 0 cos %d", i).isEqualTo(1f);
    }
  }

  @Test
  void computedTablesEqualTheBuffersStoredInTinyOwl2() {
    // The fixture's F32 buffers are what the official numpy code computed on its machine. Measured:
    // k_pos_embed differs by 6e-8 (one ulp of a sin/cos), q_pos_embed by 2.4e-7 because that
    // machine's float32 powf rounds 2 of the 32 ω_k (k = 5, 27) one ulp away from a correctly
    // rounded pow (numpy 2.4 here reproduces the same 2.4e-7); pos · 1 ulp(ω) ≤ 7 · 3e-8 plus the
    // output rounding stays below 5e-7.
    try (Checkpoint model = SafetensorsCheckpoint.openFile(Fixtures.tinyOwl2().resolve("model.safetensors"))) {
      float[] pq = SinCosPositionEmbedding.queryTable(64, 8);
      float[] pk = SinCosPositionEmbedding.keyTable(64, 4);
      for (int l = 0; l < 2; l++) {
        String prefix = "model.visual_abstractor.encoder.layers." + l + ".crossattention.attention.";
        float[] storedQ = model.tensor(prefix + "q_pos_embed", 8, 64).toFloatArray();
        float[] storedK = model.tensor(prefix + "k_pos_embed", 17, 64).toFloatArray();
        assertThat(VisionTowerFixtureTest.maxAbsDiff(pq, storedQ)).as("q_pos_embed layer %d", l).isLessThanOrEqualTo(5e-7f);
        assertThat(VisionTowerFixtureTest.maxAbsDiff(pk, storedK)).as("k_pos_embed layer %d", l).isLessThanOrEqualTo(1.2e-7f);
      }
    }
  }

  @Test
  void rejectsWidthsTheRecipeCannotSplit() {
    assertThatThrownBy(() -> SinCosPositionEmbedding.keyTable(1022, 32))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("divisible by 4, got hidden_size 1022");
    assertThatThrownBy(() -> SinCosPositionEmbedding.queryTable(63, 8))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("positive even width, got hidden_size 63");
    assertThatThrownBy(() -> SinCosPositionEmbedding.queryTable(64, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("numQueries must be positive, got 0");
  }
}
