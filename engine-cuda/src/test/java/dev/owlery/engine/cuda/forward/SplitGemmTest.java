package dev.owlery.engine.cuda.forward;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.ptx.PtxKernels;
import org.junit.jupiter.api.Test;

/** Which products {@link SplitGemm} cuts along K, and into how many splits. */
class SplitGemmTest {

  private static final long SCRATCH = SplitGemm.SCRATCH_FLOATS;

  @Test
  void aDecodeBatchOfA7bCutsItsFewTilesUpToTwoBlocksPerSm() {
    // 4,096 rows x 64 tokens: 64 tiles of 64 x 64, cut in ceil(264 / 64) = 5 of 832 columns (820 rounded up to 32)
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 4096, 4096, 64, SCRATCH)).isEqualTo(5);
    assertThat(SplitGemm.colsPerSplit(4096, 5)).isEqualTo(832);
    // 16 tokens have as many tiles; down_proj's 11,008 columns the same 5
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 4096, 4096, 16, SCRATCH)).isEqualTo(5);
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 4096, 11008, 64, SCRATCH)).isEqualTo(5);
    // gate/up: 172 tiles, ceil(264 / 172) = 2
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 11008, 4096, 64, SCRATCH)).isEqualTo(2);
    // a 1.1B's 2,048-row product at 8 tokens: 32 tiles want 9, capped at 8 (and 2,048 / 512 = 4 by columns)
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 2048, 2048, 8, SCRATCH)).isEqualTo(4);
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 2048, 8192, 8, SCRATCH)).isEqualTo(SplitGemm.MAX_SPLITS);
  }

  @Test
  void productsWithEnoughTilesOrTooFewColumnsStayWhole() {
    // prefill: 11,008 x 512 tokens is 86 x 4 = 344 tiles of 128
    assertThat(SplitGemm.splits(PtxKernels.GEMM_F16, 11008, 4096, 512, SCRATCH)).isEqualTo(1);
    // the lm_head's 32,000 rows at 64 tokens: 500 tiles
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 32000, 4096, 64, SCRATCH)).isEqualTo(1);
    // tiny-owl2's 64 columns give no split of 512
    assertThat(SplitGemm.splits(PtxKernels.GEMM64_F16, 64, 64, 24, SCRATCH)).isEqualTo(1);
  }

  @Test
  void thePartialsAlwaysFitTheScratch() {
    // 4,096 x 256 tokens through gemm: 64 tiles want 5 splits of 1,048,576 floats; the scratch holds 2
    assertThat(SplitGemm.splits(PtxKernels.GEMM_F16, 4096, 4096, 256, SCRATCH)).isEqualTo(2);
    for (int rows : new int[] {64, 1000, 2048, 4096, 5504, 11008}) {
      for (int tokens : new int[] {8, 17, 64, 130, 255}) {
        int splits = SplitGemm.splits(PtxKernels.GEMM64_F16, rows, 11008, tokens, SCRATCH);
        assertThat((long) splits * rows * tokens).as("%d rows, %d tokens", rows, tokens)
            .isLessThanOrEqualTo(splits == 1 ? Long.MAX_VALUE : SCRATCH);
      }
    }
  }
}
