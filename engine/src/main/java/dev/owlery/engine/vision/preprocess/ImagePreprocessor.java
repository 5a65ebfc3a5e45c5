package dev.owlery.engine.vision.preprocess;

import dev.owlery.engine.vision.preprocess.ImageRejectedException.Reason;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns RGB pictures into {@code pixel_values} exactly as the official {@code process_images} does
 * (spec §1): the aspect-ratio policy (§1.1), then transformers 4.31's {@code CLIPImageProcessor}
 * (§1.2): shortest-edge Pillow-bicubic resize, center crop, rescale, normalise, CHW.
 *
 * <p>Each step is public so that it can be checked against the fixture's uint8 intermediates. The
 * square canvas of the pad/resize policies and the resized picture are bounded by
 * {@code maxIntermediatePixels}: a picture with an extreme aspect ratio would otherwise ask for a
 * huge canvas (a 1×40 000 000 strip padded to a square).
 *
 * <p>Immutable and thread-safe.
 */
public final class ImagePreprocessor {

  /** Default cap on any intermediate picture: 100 megapixels (300 MB of RGB). */
  public static final long DEFAULT_MAX_INTERMEDIATE_PIXELS = 100_000_000L;

  private final PreprocessorConfig config;
  private final long maxIntermediatePixels;
  private final int[] padFill;
  private final float[] mean = new float[PixelValues.NUM_CHANNELS];
  private final float[] std = new float[PixelValues.NUM_CHANNELS];

  public ImagePreprocessor(PreprocessorConfig config) {
    this(config, DEFAULT_MAX_INTERMEDIATE_PIXELS);
  }

  public ImagePreprocessor(PreprocessorConfig config, long maxIntermediatePixels) {
    if (maxIntermediatePixels <= 0) {
      throw new IllegalArgumentException("maxIntermediatePixels must be > 0, got " + maxIntermediatePixels);
    }
    if (config.doResize() && config.doCenterCrop()
        && (config.cropHeight() > config.shortestEdge() || config.cropWidth() > config.shortestEdge())) {
      throw new IllegalArgumentException(
          "crop_size %dx%d larger than size.shortest_edge %d is not supported (CLIPImageProcessor would zero-pad)"
              .formatted(config.cropHeight(), config.cropWidth(), config.shortestEdge()));
    }
    this.config = config;
    this.maxIntermediatePixels = maxIntermediatePixels;
    this.padFill = config.padFill();
    for (int c = 0; c < PixelValues.NUM_CHANNELS; c++) {
      mean[c] = config.meanFloat(c);
      std[c] = config.stdFloat(c);
    }
  }

  public PreprocessorConfig config() {
    return config;
  }

  /** One picture's {@code pixel_values} under {@code policy}. */
  public PixelValues preprocess(RgbImage image, AspectRatioPolicy policy) {
    RgbImage prepared = switch (policy) {
      case PAD -> expandToSquare(image);
      case RESIZE -> stretchToSquare(image);
      case NONE -> image;
    };
    return clipProcess(prepared);
  }

  /** Each picture's {@code pixel_values}, in list order (picture k fills the k-th placeholder). */
  public List<PixelValues> preprocessAll(List<RgbImage> images, AspectRatioPolicy policy) {
    List<PixelValues> out = new ArrayList<>(images.size());
    for (RgbImage image : images) {
      out.add(preprocess(image, policy));
    }
    return out;
  }

  /**
   * {@code expand2square(img, int(255·mean))}: a square picture unchanged; otherwise a canvas of the
   * longer side filled with the pad colour, the picture pasted at {@code ⌊(long − short)/2⌋} along
   * the shorter axis (98×57 → offset (0, 20), 55×96 → (20, 0)).
   */
  public RgbImage expandToSquare(RgbImage image) {
    int w = image.width();
    int h = image.height();
    if (w == h) {
      return image;
    }
    int side = Math.max(w, h);
    checkIntermediate("the pad policy's square canvas", side, side);
    RgbImage canvas = RgbImage.filled(side, side, padFill);
    int left = w > h ? 0 : (h - w) / 2;
    int top = w > h ? (w - h) / 2 : 0;
    byte[] dst = canvas.rgb();
    for (int y = 0; y < h; y++) {
      System.arraycopy(image.rgb(), y * w * 3, dst, ((top + y) * side + left) * 3, w * 3);
    }
    return canvas;
  }

  /** The resize policy's {@code img.resize((max_edge, max_edge))}, PIL bicubic. */
  public RgbImage stretchToSquare(RgbImage image) {
    int side = Math.max(image.width(), image.height());
    checkIntermediate("the resize policy's square picture", side, side);
    return PillowBicubic.resize(image, side, side);
  }

  /** Steps 2-6 of spec §1.2 on an RGB picture: resize, center crop, rescale, normalise, CHW. */
  public PixelValues clipProcess(RgbImage image) {
    RgbImage resized = config.doResize() ? shortestEdgeResize(image) : image;
    RgbImage cropped = config.doCenterCrop() ? centerCrop(resized) : resized;
    return rescaleAndNormalize(cropped);
  }

  /**
   * Resize so the shorter side is {@code shortest_edge} and the longer {@code int(shortest_edge·long/short)}
   * (truncated), PIL bicubic; the same size gives a copy.
   */
  public RgbImage shortestEdgeResize(RgbImage image) {
    int w = image.width();
    int h = image.height();
    int shortSide = Math.min(w, h);
    int longSide = Math.max(w, h);
    int size = config.shortestEdge();
    // Python: int(size * long / short); the int product and its true division are exact/correctly
    // rounded in double for every size we accept.
    double newLong = Math.floor((double) ((long) size * longSide) / shortSide);
    checkIntermediate("the shortest-edge resize", size, newLong);
    int resizedLong = (int) newLong;
    return w <= h ? PillowBicubic.resize(image, size, resizedLong) : PillowBicubic.resize(image, resizedLong, size);
  }

  /** Center crop to {@code crop_size}: {@code top = ⌊(H − ch)/2⌋}, {@code left = ⌊(W − cw)/2⌋}. */
  public RgbImage centerCrop(RgbImage image) {
    int ch = config.cropHeight();
    int cw = config.cropWidth();
    if (image.width() < cw || image.height() < ch) {
      throw new ImageRejectedException(Reason.INVALID_DIMENSIONS,
          "the %dx%d picture is smaller than the %dx%d center crop (do_resize is off); send a picture at least that large"
              .formatted(image.width(), image.height(), cw, ch));
    }
    if (image.width() == cw && image.height() == ch) {
      return image;
    }
    int top = (image.height() - ch) / 2;
    int left = (image.width() - cw) / 2;
    byte[] dst = new byte[ch * cw * 3];
    for (int y = 0; y < ch; y++) {
      System.arraycopy(image.rgb(), ((top + y) * image.width() + left) * 3, dst, y * cw * 3, cw * 3);
    }
    return new RgbImage(cw, ch, dst);
  }

  /**
   * Steps 4-6: {@code x = float32(u8 · rescale_factor)} (product in double), then
   * {@code (x − mean32) / std32} in float32, laid out CHW in R, G, B order.
   */
  public PixelValues rescaleAndNormalize(RgbImage image) {
    int h = image.height();
    int w = image.width();
    int plane = h * w;
    float[] out = new float[PixelValues.NUM_CHANNELS * plane];
    byte[] rgb = image.rgb();
    double factor = config.rescaleFactor();
    for (int p = 0; p < plane; p++) {
      for (int c = 0; c < PixelValues.NUM_CHANNELS; c++) {
        int u8 = rgb[p * 3 + c] & 0xff;
        float x = config.doRescale() ? (float) (u8 * factor) : (float) u8;
        out[c * plane + p] = config.doNormalize() ? (x - mean[c]) / std[c] : x;
      }
    }
    return new PixelValues(h, w, out);
  }

  private void checkIntermediate(String what, double width, double height) {
    double pixels = width * height;
    if (pixels > maxIntermediatePixels || width > Integer.MAX_VALUE || height > Integer.MAX_VALUE) {
      throw new ImageRejectedException(Reason.TOO_LARGE,
          "%s would be %.0fx%.0f pixels, over the limit of %d; send a picture with a less extreme aspect ratio or fewer pixels"
              .formatted(what, width, height, maxIntermediatePixels));
    }
  }
}
