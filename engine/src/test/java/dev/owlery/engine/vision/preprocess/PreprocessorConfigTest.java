package dev.owlery.engine.vision.preprocess;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** preprocessor_config.json as CLIPImageProcessor reads it: both size spellings, defaults, refusals. */
class PreprocessorConfigTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void readsTheTinyOwl2File() {
    PreprocessorConfig c = PreprocessorConfig.load(Fixtures.tinyOwl2());
    assertThat(c.shortestEdge()).isEqualTo(56);
    assertThat(c.cropHeight()).isEqualTo(56);
    assertThat(c.cropWidth()).isEqualTo(56);
    assertThat(c.doResize() && c.doCenterCrop() && c.doRescale() && c.doNormalize()).isTrue();
    assertThat(c.rescaleFactor()).isEqualTo(1.0 / 255);
    assertThat(c.imageMean()).containsExactly(0.48145466, 0.4578275, 0.40821073);
    assertThat(c.imageStd()).containsExactly(0.26862954, 0.26130258, 0.27577711);
  }

  @Test
  void readsThe7bSpellingWithNumbersAndDefaults() throws Exception {
    // Spec §1: size=448, crop_size=448; do_rescale / rescale_factor absent -> true, 1/255.
    PreprocessorConfig c = PreprocessorConfig.parse(JSON.readTree("""
        {"size": 448, "crop_size": 448, "do_resize": true, "do_center_crop": true, "do_normalize": true,
         "resample": 3, "image_mean": [0.48145466, 0.4578275, 0.40821073],
         "image_std": [0.26862954, 0.26130258, 0.27577711]}"""));
    assertThat(c.shortestEdge()).isEqualTo(448);
    assertThat(c.cropHeight()).isEqualTo(448);
    assertThat(c.doRescale()).isTrue();
    assertThat(c.rescaleFactor()).isEqualTo(1.0 / 255);
    assertThat(c.padFill()).containsExactly(122, 116, 104);
  }

  @Test
  void refusesAnythingButBicubic() {
    assertThatThrownBy(() -> PreprocessorConfig.parse(JSON.readTree("{\"resample\": 2}")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("resample 2 is not supported: only 3 (PIL BICUBIC");
  }

  @Test
  void refusesBadFieldsNamingThem() {
    assertThatThrownBy(() -> PreprocessorConfig.parse(JSON.readTree("{\"size\": {\"height\": 4, \"width\": 4}}")))
        .hasMessageContaining("size {\"height\":4,\"width\":4} is not supported");
    assertThatThrownBy(() -> PreprocessorConfig.parse(JSON.readTree("{\"image_mean\": [0.5, 0.5]}")))
        .hasMessageContaining("image_mean must be a list of 3 numbers");
    assertThatThrownBy(() -> PreprocessorConfig.parse(JSON.readTree("{\"image_std\": [0.5, 0, 0.5]}")))
        .hasMessageContaining("image_std values must be > 0, got 0.0");
    assertThatThrownBy(() -> PreprocessorConfig.parse(JSON.readTree("{\"do_resize\": \"yes\"}")))
        .hasMessageContaining("do_resize must be true or false");
    assertThatThrownBy(() -> new ImagePreprocessor(PreprocessorConfig.parse(
            JSON.readTree("{\"size\": 56, \"crop_size\": 64}"))))
        .hasMessageContaining("crop_size 64x64 larger than size.shortest_edge 56 is not supported");
  }
}
