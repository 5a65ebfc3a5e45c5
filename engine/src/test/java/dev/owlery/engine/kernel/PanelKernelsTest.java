package dev.owlery.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Holds {@link PanelKernels#transposeBlocks} to its definition, element for element: the token
 * blocks stored column after column, the columns in the pair order of {@link VectorMatmul#permuteForPairs},
 * the padding tokens zero. Widths and token counts on both sides of the register tiles (16 x 16
 * where L = 16) and of the 32-column pair blocks, with and without a natural-order head.
 */
class PanelKernelsTest {

  private static final int[] COLUMNS = {1, 15, 16, 17, 33, 64, 100, 769, 1024};
  private static final int[] TOKENS = {1, 15, 16, 17, 63, 64, 65, 100, 129};

  @Test
  void transposeBlocksStoresEachTokenBlockColumnByColumnInPairOrder() {
    Random random = new Random(11);
    int xOffset = 3;
    for (int cols : COLUMNS) {
      for (int pairsFrom : new int[] {0, Math.min(5, cols), cols}) {
        for (int numTokens : TOKENS) {
          float[] x = new float[xOffset + numTokens * cols];
          for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
          }
          float scale = 0x1p112f;
          float[] expected = definition(x, xOffset, cols, numTokens, pairsFrom, scale);
          float[] actual = new float[expected.length];
          Arrays.fill(actual, Float.NaN); // every element must be written, padding included
          int blocks = PanelKernels.tokenBlocks(numTokens);
          int half = blocks / 2; // two calls, as two threads split the blocks
          PanelKernels.transposeBlocks(x, xOffset, cols, numTokens, pairsFrom, scale, actual, 0, half);
          PanelKernels.transposeBlocks(x, xOffset, cols, numTokens, pairsFrom, scale, actual, half, blocks);
          int mismatch = Arrays.mismatch(expected, actual);
          assertThat(mismatch)
              .as("first element differing at cols %d, pairs from %d, %d tokens", cols, pairsFrom, numTokens)
              .isEqualTo(-1);
        }
      }
    }
  }

  /**
   * {@code xT[blockStart * cols + k * width + (t - blockStart)] = permuted[t][k] * scale}, the
   * tokens padded to whole vectors and cut into blocks of {@code 4L}, element by element.
   */
  private static float[] definition(float[] x, int xOffset, int cols, int numTokens, int pairsFrom, float scale) {
    float[] permuted = new float[numTokens * cols];
    VectorMatmul.permuteForPairs(x, xOffset, cols, numTokens, pairsFrom, scale, permuted);
    int paddedTokens = PanelKernels.paddedTokens(numTokens);
    int blockTokens = 4 * VectorMatmul.F.length();
    float[] xT = new float[cols * paddedTokens];
    for (int t = 0; t < paddedTokens; t++) {
      int blockStart = t / blockTokens * blockTokens;
      int width = Math.min(blockTokens, paddedTokens - blockStart);
      for (int k = 0; k < cols; k++) {
        xT[blockStart * cols + k * width + (t - blockStart)] = t < numTokens ? permuted[t * cols + k] : 0f;
      }
    }
    return xT;
  }
}
