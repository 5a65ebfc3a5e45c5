package dev.owlery.engine.vision.preprocess;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.owlery.engine.testing.AllocationBudget;

/**
 * Any bytes sent as an image are decoded and preprocessed under every aspect-ratio policy, or
 * refused with an {@link ImageRejectedException}, within an allocation budget the pixel caps
 * imply. Corpus: {@code testdata/fuzz/images/} (docs/fuzzing.md).
 */
class ImageDecoderFuzzTest {

  /** Caps small enough that a fuzz run never needs much memory; the checks are the same at any cap. */
  private static final long MAX_PIXELS = 1L << 20;
  private static final long MAX_INTERMEDIATE_PIXELS = 1L << 21;
  private static final long BUDGET_BYTES = 512L << 20;
  private static final int IMAGE_SIZE = 16;

  private final ImageDecoder decoder = new ImageDecoder(MAX_PIXELS);
  private final ImagePreprocessor preprocessor =
      new ImagePreprocessor(PreprocessorConfig.clip(IMAGE_SIZE), MAX_INTERMEDIATE_PIXELS);

  @FuzzTest
  void decodeAndPreprocess(byte[] bytes) {
    try {
      AllocationBudget.enforce(BUDGET_BYTES, arena -> {
        RgbImage image = decoder.decode(bytes);
        assertThat(image.numPixels()).isLessThanOrEqualTo(MAX_PIXELS);
        for (AspectRatioPolicy policy : AspectRatioPolicy.values()) {
          PixelValues pixels = preprocessor.preprocess(image, policy);
          assertThat(pixels.height()).isEqualTo(IMAGE_SIZE);
        }
      });
    } catch (ImageRejectedException refused) {
      // the documented failure
    }
  }
}
