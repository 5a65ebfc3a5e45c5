package dev.owlery.engine.vision.preprocess;

import com.fasterxml.jackson.databind.JsonNode;
import dev.owlery.engine.config.JsonConfigFile;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model directory's {@code preprocessor_config.json} as transformers 4.31's
 * {@code CLIPImageProcessor} reads it (spec §1): absent keys take that class's defaults, and
 * {@code size} / {@code crop_size} may be written as a number or as a dict.
 *
 * @param shortestEdge {@code size.shortest_edge}: the shorter side after the resize
 * @param cropHeight {@code crop_size.height}
 * @param cropWidth {@code crop_size.width}
 * @param rescaleFactor multiplies each uint8 sample (in double) before the float32 rounding
 * @param imageMean per-channel mean (R, G, B) as written (double); rounded to float32 to normalise,
 *     truncated {@code int(255·mean)} for the pad colour
 * @param imageStd per-channel standard deviation (R, G, B) as written
 */
public record PreprocessorConfig(
    boolean doResize,
    int shortestEdge,
    boolean doCenterCrop,
    int cropHeight,
    int cropWidth,
    boolean doRescale,
    double rescaleFactor,
    boolean doNormalize,
    double[] imageMean,
    double[] imageStd) {

  /** Pillow's {@code Image.BICUBIC}, the only {@code resample} value we implement. */
  public static final int RESAMPLE_BICUBIC = 3;

  /** {@code OPENAI_CLIP_MEAN}, the CLIPImageProcessor default. */
  private static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};

  /** {@code OPENAI_CLIP_STD}, the CLIPImageProcessor default. */
  private static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

  /** CLIPImageProcessor's default size and crop size. */
  private static final int CLIP_DEFAULT_SIZE = 224;

  public PreprocessorConfig {
    if (shortestEdge <= 0 || cropHeight <= 0 || cropWidth <= 0) {
      throw new IllegalArgumentException("size.shortest_edge (%d) and crop_size (%dx%d) must be > 0"
          .formatted(shortestEdge, cropHeight, cropWidth));
    }
    imageMean = checkTriple("image_mean", imageMean);
    imageStd = checkTriple("image_std", imageStd);
    for (double s : imageStd) {
      if (!(s > 0)) {
        throw new IllegalArgumentException("image_std values must be > 0, got " + s);
      }
    }
    if (!(rescaleFactor > 0) || Double.isInfinite(rescaleFactor)) {
      throw new IllegalArgumentException("rescale_factor must be a finite number > 0, got " + rescaleFactor);
    }
  }

  /** The settings of the tiny-owl2 / 7B checkpoints for a given size: CLIP defaults, size = crop = {@code imageSize}. */
  public static PreprocessorConfig clip(int imageSize) {
    return new PreprocessorConfig(true, imageSize, true, imageSize, imageSize, true, 1.0 / 255, true, CLIP_MEAN, CLIP_STD);
  }

  /**
   * The settings for a model directory whose vision tower takes {@code imageSize} pixels:
   * preprocessor_config.json when present, else the CLIP defaults for that size; a file that crops
   * to another size is an error naming both.
   */
  public static PreprocessorConfig forModel(Path dir, int imageSize) {
    PreprocessorConfig config = Files.exists(dir.resolve("preprocessor_config.json")) ? load(dir) : clip(imageSize);
    if (config.cropHeight() != imageSize || config.cropWidth() != imageSize) {
      throw new IllegalArgumentException(
          "%s: preprocessor_config.json crops to %dx%d but the vision tower takes %dx%d (visual_model.image_size)"
              .formatted(dir, config.cropWidth(), config.cropHeight(), imageSize, imageSize));
    }
    return config;
  }

  /** Reads and validates {@code dir/preprocessor_config.json}. */
  public static PreprocessorConfig load(Path dir) {
    return JsonConfigFile.read(dir.resolve("preprocessor_config.json"), PreprocessorConfig::parse);
  }

  /** Parses a preprocessor_config.json tree; messages name the offending field. */
  public static PreprocessorConfig parse(JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("preprocessor config is not a JSON object");
    }
    int resample = root.has("resample") ? intField(root.get("resample"), "resample") : RESAMPLE_BICUBIC;
    if (resample != RESAMPLE_BICUBIC) {
      throw new IllegalArgumentException(
          "resample %d is not supported: only 3 (PIL BICUBIC, the CLIP and mPLUG-Owl2 setting) is implemented"
              .formatted(resample));
    }
    int shortestEdge = shortestEdge(root.get("size"));
    JsonNode crop = root.get("crop_size");
    int cropHeight = crop == null || crop.isNull() ? CLIP_DEFAULT_SIZE : cropSide(crop, "height");
    int cropWidth = crop == null || crop.isNull() ? CLIP_DEFAULT_SIZE : cropSide(crop, "width");
    return new PreprocessorConfig(
        bool(root, "do_resize"),
        shortestEdge,
        bool(root, "do_center_crop"),
        cropHeight,
        cropWidth,
        bool(root, "do_rescale"),
        root.has("rescale_factor") ? number(root.get("rescale_factor"), "rescale_factor") : 1.0 / 255,
        bool(root, "do_normalize"),
        root.has("image_mean") ? triple(root.get("image_mean"), "image_mean") : CLIP_MEAN,
        root.has("image_std") ? triple(root.get("image_std"), "image_std") : CLIP_STD);
  }

  @Override
  public double[] imageMean() {
    return imageMean.clone();
  }

  @Override
  public double[] imageStd() {
    return imageStd.clone();
  }

  /** {@code imageMean[c]} rounded to float32, as numpy does before normalising. */
  public float meanFloat(int c) {
    return (float) imageMean[c];
  }

  /** {@code imageStd[c]} rounded to float32. */
  public float stdFloat(int c) {
    return (float) imageStd[c];
  }

  /** The {@code expand2square} background: {@code int(255·mean_c)}, truncated (spec §1.1: (122,116,104)). */
  public int[] padFill() {
    return new int[] {(int) (imageMean[0] * 255), (int) (imageMean[1] * 255), (int) (imageMean[2] * 255)};
  }

  /** {@code size}: a number (older configs) or {@code {"shortest_edge": n}}; CLIPImageProcessor needs the latter. */
  private static int shortestEdge(JsonNode size) {
    if (size == null || size.isNull()) {
      return CLIP_DEFAULT_SIZE;
    }
    if (size.isNumber()) {
      return intField(size, "size");
    }
    if (size.isObject() && size.has("shortest_edge")) {
      return intField(size.get("shortest_edge"), "size.shortest_edge");
    }
    throw new IllegalArgumentException(
        "size %s is not supported: CLIPImageProcessor needs a number or {\"shortest_edge\": n}".formatted(size));
  }

  /** {@code crop_size}: a number (square) or {@code {"height": h, "width": w}}. */
  private static int cropSide(JsonNode crop, String side) {
    if (crop.isNumber()) {
      return intField(crop, "crop_size");
    }
    if (crop.isObject() && crop.has(side)) {
      return intField(crop.get(side), "crop_size." + side);
    }
    throw new IllegalArgumentException(
        "crop_size %s is not supported: expected a number or {\"height\": h, \"width\": w}".formatted(crop));
  }

  private static boolean bool(JsonNode root, String field) {
    JsonNode v = root.get(field);
    if (v == null || v.isNull()) {
      return true;
    }
    if (!v.isBoolean()) {
      throw new IllegalArgumentException("%s must be true or false, got %s".formatted(field, v));
    }
    return v.booleanValue();
  }

  private static int intField(JsonNode v, String field) {
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new IllegalArgumentException("%s must be an integer, got %s".formatted(field, v));
    }
    return v.intValue();
  }

  private static double number(JsonNode v, String field) {
    if (!v.isNumber()) {
      throw new IllegalArgumentException("%s must be a number, got %s".formatted(field, v));
    }
    return v.doubleValue();
  }

  private static double[] triple(JsonNode v, String field) {
    if (!v.isArray() || v.size() != 3) {
      throw new IllegalArgumentException("%s must be a list of 3 numbers (R, G, B), got %s".formatted(field, v));
    }
    return new double[] {number(v.get(0), field), number(v.get(1), field), number(v.get(2), field)};
  }

  private static double[] checkTriple(String field, double[] values) {
    if (values.length != 3) {
      throw new IllegalArgumentException("%s needs 3 values (R, G, B), got %d".formatted(field, values.length));
    }
    return values.clone();
  }
}
