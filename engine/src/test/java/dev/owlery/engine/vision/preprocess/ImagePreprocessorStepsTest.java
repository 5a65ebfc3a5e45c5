package dev.owlery.engine.vision.preprocess;

import static dev.owlery.engine.vision.preprocess.HandMadeImages.pattern;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.vision.preprocess.ImageRejectedException.Reason;
import org.junit.jupiter.api.Test;

/** The individual spec §1 steps on synthetic pictures (no fixture needed). */
class ImagePreprocessorStepsTest {

  private final ImagePreprocessor clip56 = new ImagePreprocessor(PreprocessorConfig.clip(56));

  @Test
  void padFillIsTruncatedNotRounded() {
    assertThat(PreprocessorConfig.clip(448).padFill()).containsExactly(122, 116, 104);
  }

  @Test
  void expandToSquarePastesAtFloorOffsets() {
    // 98x57: canvas 98x98, picture at (x=0, y=floor(41/2)=20).
    RgbImage wide = pattern(98, 57);
    RgbImage square = clip56.expandToSquare(wide);
    assertThat(square.width()).isEqualTo(98);
    assertThat(square.height()).isEqualTo(98);
    assertPixel(square, 5, 19, 122, 116, 104);
    assertSamePixel(square, 0, 20, wide, 0, 0);
    assertSamePixel(square, 97, 76, wide, 97, 56);
    assertPixel(square, 97, 77, 122, 116, 104);
    // 55x96: picture at (x=floor(41/2)=20, y=0).
    RgbImage tall = pattern(55, 96);
    RgbImage tallSquare = clip56.expandToSquare(tall);
    assertPixel(tallSquare, 19, 50, 122, 116, 104);
    assertSamePixel(tallSquare, 20, 0, tall, 0, 0);
    assertSamePixel(tallSquare, 74, 95, tall, 54, 95);
    assertPixel(tallSquare, 75, 95, 122, 116, 104);
    // A square picture is returned as it is.
    RgbImage already = pattern(12, 12);
    assertThat(clip56.expandToSquare(already)).isSameAs(already);
  }

  @Test
  void padPixelsNormaliseToTheSpecValues() {
    // Spec §1.1: after normalisation the pad pixels are (-0.01125, -0.01120, -0.00133), not 0.
    PixelValues pad = clip56.rescaleAndNormalize(RgbImage.filled(1, 1, new int[] {122, 116, 104}));
    assertThat(pad.get(0, 0, 0)).isCloseTo(-0.01125f, org.assertj.core.data.Offset.offset(5e-6f));
    assertThat(pad.get(1, 0, 0)).isCloseTo(-0.01120f, org.assertj.core.data.Offset.offset(5e-6f));
    assertThat(pad.get(2, 0, 0)).isCloseTo(-0.00133f, org.assertj.core.data.Offset.offset(5e-6f));
  }

  @Test
  void rescaleRoundsTheDoubleProductThenNormalisesInFloat() {
    RgbImage one = new RgbImage(1, 1, new byte[] {(byte) 200, 7, 0});
    PixelValues px = clip56.rescaleAndNormalize(one);
    for (int c = 0; c < 3; c++) {
      int u8 = one.get(0, 0, c);
      float x = (float) (u8 * (1.0 / 255));
      float expected = (x - (float) PreprocessorConfig.clip(56).imageMean()[c]) / (float) PreprocessorConfig.clip(56).imageStd()[c];
      assertThat(px.get(c, 0, 0)).isEqualTo(expected);
    }
  }

  @Test
  void shortestEdgeResizeTruncatesTheLongSide() {
    // 100x80 -> short 80 -> 56, long int(56*100/80) = 70; 57x98 -> 56 x int(56*98/57) = 96.
    RgbImage wide = clip56.shortestEdgeResize(pattern(100, 80));
    assertThat(new int[] {wide.width(), wide.height()}).containsExactly(70, 56);
    RgbImage tall = clip56.shortestEdgeResize(pattern(57, 98));
    assertThat(new int[] {tall.width(), tall.height()}).containsExactly(56, 96);
    assertThat(PillowBicubic.resize(pattern(57, 98), 56, 96)).isEqualTo(tall);
  }

  @Test
  void centerCropUsesFloorOffsets() {
    RgbImage in = pattern(71, 57);
    RgbImage crop = clip56.centerCrop(in);
    assertThat(new int[] {crop.width(), crop.height()}).containsExactly(56, 56);
    // left = floor(15/2) = 7, top = floor(1/2) = 0.
    assertSamePixel(crop, 0, 0, in, 7, 0);
    assertSamePixel(crop, 55, 55, in, 62, 55);
  }

  @Test
  void noneCropsTheLongSideAndOutputIsChw() {
    PixelValues px = clip56.preprocess(pattern(140, 56), AspectRatioPolicy.NONE);
    assertThat(px.height()).isEqualTo(56);
    assertThat(px.width()).isEqualTo(56);
    PixelValues direct = clip56.rescaleAndNormalize(clip56.centerCrop(pattern(140, 56)));
    assertThat(px.data()).isEqualTo(direct.data());
    // CHW: element (c=1, y=3, x=5) is the green of pixel (x=42+5, y=3) of the source.
    RgbImage source = pattern(140, 56);
    assertThat(px.get(1, 3, 5)).isEqualTo(clip56.rescaleAndNormalize(
        new RgbImage(1, 1, new byte[] {0, (byte) source.get(47, 3, 1), 0})).get(1, 0, 0));
  }

  @Test
  void extremeAspectRatiosAreRefusedBeforeAllocatingTheCanvas() {
    ImagePreprocessor capped = new ImagePreprocessor(PreprocessorConfig.clip(56), 10_000);
    RgbImage strip = pattern(200, 1);
    assertThatThrownBy(() -> capped.preprocess(strip, AspectRatioPolicy.PAD))
        .isInstanceOfSatisfying(ImageRejectedException.class, e -> assertThat(e.reason()).isEqualTo(Reason.TOO_LARGE))
        .hasMessageContaining("the pad policy's square canvas would be 200x200 pixels, over the limit of 10000");
    assertThatThrownBy(() -> capped.preprocess(strip, AspectRatioPolicy.NONE))
        .hasMessageContaining("the shortest-edge resize would be 56x11200 pixels");
  }

  @Test
  void aPolicyIsChosenFromImageAspectRatioAsTheOfficialCodeDoes() {
    assertThat(AspectRatioPolicy.fromImageAspectRatio("pad")).isEqualTo(AspectRatioPolicy.PAD);
    assertThat(AspectRatioPolicy.fromImageAspectRatio("resize")).isEqualTo(AspectRatioPolicy.RESIZE);
    assertThat(AspectRatioPolicy.fromImageAspectRatio("square")).isEqualTo(AspectRatioPolicy.NONE);
    assertThat(AspectRatioPolicy.fromImageAspectRatio(null)).isEqualTo(AspectRatioPolicy.NONE);
  }

  private static void assertPixel(RgbImage image, int x, int y, int r, int g, int b) {
    assertThat(new int[] {image.get(x, y, 0), image.get(x, y, 1), image.get(x, y, 2)})
        .as("pixel (%d, %d)", x, y).containsExactly(r, g, b);
  }

  private static void assertSamePixel(RgbImage image, int x, int y, RgbImage source, int sx, int sy) {
    assertPixel(image, x, y, source.get(sx, sy, 0), source.get(sx, sy, 1), source.get(sx, sy, 2));
  }
}
