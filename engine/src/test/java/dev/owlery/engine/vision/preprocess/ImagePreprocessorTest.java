package dev.owlery.engine.vision.preprocess;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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

  private static double maxAbsError(AspectRatioPolicy policy, String name) {
    PixelValues actual = preprocessor.preprocess(testImage, policy);
    float[] expected = reference.tensor(name, 1, 3, 56, 56).toFloatArray();
    assertThat(actual.height()).isEqualTo(56);
    assertThat(actual.width()).isEqualTo(56);
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      max = Math.max(max, Math.abs((double) expected[i] - actual.data()[i]));
    }
    System.out.printf("%s vs %s: max abs error %g%n", policy, name, max);
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
