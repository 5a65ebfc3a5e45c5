package dev.owlery.engine.vision.preprocess;

import static dev.owlery.engine.vision.preprocess.HandMadeImages.pattern;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The bicubic port against Pillow 9.4's {@code Image.resize(..., Image.BICUBIC)} of the same
 * synthetic pattern ({@link HandMadeImages#pattern}); the expected values are Pillow's output (in
 * full for tiny results, as SHA-256 of the RGB bytes otherwise). Any single-level difference in any
 * sample changes the hash, so these are exact comparisons.
 */
class PillowBicubicTest {

  @Test
  void downscaleOfATinyPictureEqualsPillowValueByValue() {
    RgbImage out = PillowBicubic.resize(pattern(7, 5), 3, 4);
    assertThat(unsigned(out)).containsExactly(
        45, 104, 149, 123, 158, 187, 170, 149, 116, 161, 165, 146, 143, 121, 106, 98, 110, 147,
        118, 121, 105, 136, 120, 106, 149, 89, 127, 107, 166, 126, 108, 138, 118, 130, 165, 99);
  }

  @Test
  void strongOneAxisDownscaleAndSinglePixelEqualPillow() {
    // 1000 -> 7 columns: a 143-sample-wide kernel; the vertical pass is skipped (3 -> 3).
    assertThat(unsigned(PillowBicubic.resize(pattern(1000, 3), 7, 3))).containsExactly(
        127, 128, 127, 127, 127, 128, 128, 128, 127, 127, 127, 128, 128, 128, 127, 127, 127, 127, 127, 128, 127,
        127, 128, 128, 127, 127, 127, 128, 128, 129, 127, 127, 126, 128, 128, 128, 127, 127, 127, 128, 128, 129,
        127, 127, 131, 127, 127, 129, 127, 127, 128, 127, 126, 128, 127, 126, 128, 127, 126, 128, 128, 126, 129);
    assertThat(unsigned(PillowBicubic.resize(pattern(50, 40), 1, 1))).containsExactly(129, 125, 130);
  }

  @ParameterizedTest(name = "{0}x{1} -> {2}x{3}")
  @CsvSource({
    "5, 3, 11, 7, d82a1cf21a4c1e8bac3a0c066042755227ed0d7fbf55fbb300ed5fdff3a223d2",
    "98, 57, 56, 32, dd8191e362648f91063b4d36276fca88a91cb651f7f16b0d89f62eed94420200",
    "57, 98, 33, 56, 386c7020fb4639e86510c6aff0a5dc014efd18c2faffdff8dfc17fbb207288f3",
    "13, 9, 40, 27, 3fefc6a0196827678329febe22e94e8c10904612feb8343b5a1abdaa9114f2b8",
    "30, 20, 30, 9, 0837582a2b4ae1cbb761f30955e2ffbd048945892b05689db6303a70162daede",
    "30, 20, 71, 20, b47f875fc23e645de0ed45c1b32e56add80eb70477a97cf663e0f3b976b39a2d",
    "100, 80, 448, 358, 0c951ac5a025f8d855a2f7073edbba53ae7757ddc93de21cf7f99670ea329035",
    "3, 1000, 3, 448, cad4a6bf4996a1f5a1476a6fffc73c87b7715a5f71082c450fba13f0fde07c8e",
  })
  void resizeEqualsPillow(int width, int height, int newWidth, int newHeight, String pillowSha256) {
    RgbImage out = PillowBicubic.resize(pattern(width, height), newWidth, newHeight);
    assertThat(out.width()).isEqualTo(newWidth);
    assertThat(out.height()).isEqualTo(newHeight);
    assertThat(ImageDecoderTest.sha256(out)).isEqualTo(pillowSha256);
  }

  @Test
  void sameSizeResizeReturnsACopy() {
    RgbImage in = pattern(9, 4);
    RgbImage out = PillowBicubic.resize(in, 9, 4);
    assertThat(out).isEqualTo(in);
    assertThat(out.rgb()).isNotSameAs(in.rgb());
  }

  @Test
  void kernelMatchesTheSpecFormula() {
    // K(0) = 1, K(±1) = 0, K(±2) = 0, K(0.5) = 0.5625, K(1.5) = -0.0625 (a = -0.5).
    assertThat(PillowBicubic.kernel(0)).isEqualTo(1.0);
    assertThat(PillowBicubic.kernel(1)).isEqualTo(0.0);
    assertThat(PillowBicubic.kernel(-2)).isEqualTo(0.0);
    assertThat(PillowBicubic.kernel(0.5)).isEqualTo(0.5625);
    assertThat(PillowBicubic.kernel(-1.5)).isEqualTo(-0.0625);
  }

  @Test
  void fixedPointWeightsOfAnUpscaleSumToOne() {
    PillowBicubic.Coefficients c = PillowBicubic.Coefficients.of(5, 11);
    for (int i = 0; i < 11; i++) {
      long sum = 0;
      for (int j = 0; j < c.count()[i]; j++) {
        sum += c.weights()[i * c.kernelSize() + j];
      }
      // Each weight rounds to the nearest 2^-22, so the sum is 2^22 within the number of taps.
      assertThat(Math.abs(sum - (1L << PillowBicubic.PRECISION_BITS))).isLessThanOrEqualTo(c.count()[i]);
    }
  }

  private static int[] unsigned(RgbImage image) {
    int[] out = new int[image.rgb().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = image.rgb()[i] & 0xff;
    }
    return out;
  }
}
