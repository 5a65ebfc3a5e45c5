package dev.owlery.engine.vision.preprocess;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The whole spec §1 pipeline against the tiny-owl2 fixture, which the official code produced. */
class ImagePreprocessorTest {

  private static SafetensorsCheckpoint reference;
  private static RgbImage testImage;
  private static ImagePreprocessor preprocessor;

  @BeforeAll
  static void open() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
    testImage = new ImageDecoder().decode(Files.readAllBytes(dir.resolve("test_image.png")));
    preprocessor = new ImagePreprocessor(PreprocessorConfig.load(dir));
  }

  @AfterAll
  static void close() {
    if (reference != null) {
      reference.close();
    }
  }

  @Test
  void decodedTestImageEqualsTheOfficialDecode() {
    assertThat(testImage.width()).isEqualTo(100);
    assertThat(testImage.height()).isEqualTo(80);
    assertThat(testImage.rgb()).isEqualTo(u8("image.rgb_u8", 80, 100));
  }

  @Test
  void resizePolicyStretchMatchesPillowExactly() {
    RgbImage square = preprocessor.stretchToSquare(testImage);
    assertThat(square.rgb()).isEqualTo(u8("preprocess.square_resized_u8", 100, 100));
  }

  @Test
  void shortestEdgeResizeMatchesPillowExactly() {
    RgbImage resized = preprocessor.shortestEdgeResize(preprocessor.stretchToSquare(testImage));
    assertThat(resized.rgb()).isEqualTo(u8("preprocess.clip_resized_u8", 56, 56));
  }

  @Test
  void padPolicyCanvasMatchesExpand2square() {
    RgbImage padded = preprocessor.expandToSquare(testImage);
    assertThat(padded.rgb()).isEqualTo(u8("preprocess.pad_square_u8", 100, 100));
  }

  @Test
  void pixelValuesOfEveryPolicyMatchTheOfficialOnesExactly() {
    // spec §9 / fixture README: 0 with an exact Pillow-bicubic port.
    assertThat(maxAbsError(AspectRatioPolicy.RESIZE, "pixel_values")).isZero();
    assertThat(maxAbsError(AspectRatioPolicy.PAD, "pixel_values_pad")).isZero();
    assertThat(maxAbsError(AspectRatioPolicy.NONE, "pixel_values_crop")).isZero();
  }

  @ParameterizedTest(name = "{0} px, {1}")
  @CsvSource({
    "448, RESIZE, 33adb6f92613c8ae5d995fafca65d91e345344115ee8d01ab82c1757e1739b47",
    "448, PAD, 16d7b9fcda2685ad16dbe0754430b03cfd4a8175a512c56c734adcab0d443be2",
    "448, NONE, d7ab0476a5ed5475c734c5936789255158a928dab3d1c2a5f416665c6595517d",
    "84, RESIZE, c3d1aba878f4e940e5d0ffe8df3ecc410cb626a9fa6605346003ac4ab193f846",
    "84, PAD, b05d07eb6f781b7cd34709570352bd2f42691910ed92efe3d19a710679e0e8f6",
    "84, NONE, 2c1345f3154f664e3d471124ef54f0bccfb0d191b3d0bdcae5ea32adb2f76e64",
  })
  void otherImageSizesFollowTheSamePath(int imageSize, AspectRatioPolicy policy, String pillowSha256) {
    // The uint8 picture entering rescale/normalise, computed with Pillow 9.4 by the same steps
    // (resize / expand2square, shortest-edge bicubic resize, floor-centred crop).
    ImagePreprocessor sized = new ImagePreprocessor(PreprocessorConfig.clip(imageSize));
    RgbImage prepared = switch (policy) {
      case PAD -> sized.expandToSquare(testImage);
      case RESIZE -> sized.stretchToSquare(testImage);
      case NONE -> testImage;
    };
    RgbImage cropped = sized.centerCrop(sized.shortestEdgeResize(prepared));
    assertThat(ImageDecoderTest.sha256(cropped)).isEqualTo(pillowSha256);
    PixelValues pixels = sized.preprocess(testImage, policy);
    assertThat(pixels.height()).isEqualTo(imageSize);
    assertThat(pixels.width()).isEqualTo(imageSize);
    assertThat(pixels.data()).isEqualTo(sized.rescaleAndNormalize(cropped).data());
  }

  @Test
  void severalPicturesArePreprocessedEachInListOrder() {
    RgbImage canvas = preprocessor.expandToSquare(testImage);
    List<PixelValues> all = preprocessor.preprocessAll(List.of(testImage, canvas, testImage), AspectRatioPolicy.PAD);
    assertThat(all).hasSize(3);
    assertThat(all.get(0).data()).isEqualTo(reference.tensor("pixel_values_pad").toFloatArray());
    assertThat(all.get(2).data()).isEqualTo(all.get(0).data());
    // The already-square canvas is left as is by the pad policy, so it preprocesses the same.
    assertThat(all.get(1).data()).isEqualTo(all.get(0).data());
  }

  private static double maxAbsError(AspectRatioPolicy policy, String name) {
    PixelValues actual = preprocessor.preprocess(testImage, policy);
    float[] expected = reference.tensor(name, 1, 3, 56, 56).toFloatArray();
    assertThat(actual.height()).isEqualTo(56);
    assertThat(actual.width()).isEqualTo(56);
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      max = Math.max(max, Math.abs((double) expected[i] - actual.data()[i]));
    }
    return max;
  }

  private static byte[] u8(String name, int height, int width) {
    Tensor t = reference.tensor(name, height, width, 3);
    byte[] out = new byte[Math.toIntExact(t.numElements())];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) t.getLong(i);
    }
    return out;
  }
}
