package dev.owlery.engine.vision.preprocess;

/**
 * Pillow's {@code Image.resize(size, Image.BICUBIC)} on an 8-bit RGB image, reproduced to the pixel
 * (spec §1.3; Pillow {@code Resample.c}: {@code precompute_coeffs}, {@code normalize_coeffs_8bpc},
 * {@code ImagingResampleHorizontal_8bpc} / {@code Vertical_8bpc}, {@code ImagingResampleInner}).
 *
 * <p>Separable: a horizontal pass, then a vertical pass, each writing clipped uint8; a pass is skipped
 * when its axis keeps its size, and a resize to the same size returns a copy. Weights are computed in
 * double with Pillow's exact expression order (the reciprocal scale is multiplied in, the kernel is in
 * Horner form), normalised to sum 1, then turned into fixed point with 22 fractional bits rounded
 * half away from zero; each output sums {@code 2^21 + Σ sample·weight} in 32-bit ints and keeps
 * {@code clamp(acc >> 22, 0, 255)}.
 */
public final class PillowBicubic {

  /** Fractional bits of the fixed-point weights: Pillow's {@code PRECISION_BITS = 32 - 8 - 2}. */
  static final int PRECISION_BITS = 32 - 8 - 2;

  /** Support of the bicubic kernel in input samples at scale 1. */
  private static final double SUPPORT = 2.0;

  /** The kernel's {@code a}. */
  private static final double A = -0.5;

  private PillowBicubic() {}

  /** {@code image} resized to {@code width × height}. */
  public static RgbImage resize(RgbImage image, int width, int height) {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException("resize target must be at least 1x1, got %dx%d".formatted(width, height));
    }
    if (width == image.width() && height == image.height()) {
      return image.copy();
    }
    RgbImage out = image;
    if (width != image.width()) {
      out = horizontal(out, Coefficients.of(image.width(), width));
    }
    if (height != image.height()) {
      out = vertical(out, Coefficients.of(image.height(), height));
    }
    return out;
  }

  /** Pillow's {@code bicubic_filter}, term order kept: the result must match it bit for bit. */
  static double kernel(double x) {
    if (x < 0.0) {
      x = -x;
    }
    if (x < 1.0) {
      return ((A + 2.0) * x - (A + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
      return (((x - 5) * x + 8) * x - 4) * A;
    }
    return 0.0;
  }

  /**
   * Fixed-point weights of one axis: output {@code i} reads inputs {@code [start[i], start[i] + count[i])}
   * with weights {@code weights[i * kernelSize + j]}.
   */
  record Coefficients(int kernelSize, int[] start, int[] count, int[] weights) {

    /** Pillow's {@code precompute_coeffs} (box = the whole axis) then {@code normalize_coeffs_8bpc}. */
    static Coefficients of(int inSize, int outSize) {
      double scale = (double) inSize / outSize;
      double filterScale = Math.max(scale, 1.0);
      double support = SUPPORT * filterScale;
      int kernelSize = (int) Math.ceil(support) * 2 + 1;
      int[] start = new int[outSize];
      int[] count = new int[outSize];
      int[] weights = new int[Math.multiplyExact(outSize, kernelSize)];
      double[] k = new double[kernelSize];
      double ss = 1.0 / filterScale;
      for (int i = 0; i < outSize; i++) {
        double center = (i + 0.5) * scale;
        int xmin = Math.max((int) (center - support + 0.5), 0);
        int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
        double sum = 0.0;
        for (int j = 0; j < xmax; j++) {
          double w = kernel((j + xmin - center + 0.5) * ss);
          k[j] = w;
          sum += w;
        }
        for (int j = 0; j < xmax; j++) {
          double w = sum != 0.0 ? k[j] / sum : k[j];
          weights[i * kernelSize + j] = w < 0
              ? (int) (-0.5 + w * (1 << PRECISION_BITS))
              : (int) (0.5 + w * (1 << PRECISION_BITS));
        }
        start[i] = xmin;
        count[i] = xmax;
      }
      return new Coefficients(kernelSize, start, count, weights);
    }
  }

  private static RgbImage horizontal(RgbImage in, Coefficients c) {
    int outWidth = c.start().length;
    int height = in.height();
    byte[] src = in.rgb();
    byte[] dst = new byte[Math.multiplyExact(Math.multiplyExact(outWidth, height), 3)];
    for (int y = 0; y < height; y++) {
      int row = y * in.width() * 3;
      for (int x = 0; x < outWidth; x++) {
        int first = row + c.start()[x] * 3;
        int k = x * c.kernelSize();
        int r = 1 << (PRECISION_BITS - 1);
        int g = r;
        int b = r;
        for (int j = 0; j < c.count()[x]; j++) {
          int w = c.weights()[k + j];
          int p = first + j * 3;
          r += (src[p] & 0xff) * w;
          g += (src[p + 1] & 0xff) * w;
          b += (src[p + 2] & 0xff) * w;
        }
        int o = (y * outWidth + x) * 3;
        dst[o] = clip8(r);
        dst[o + 1] = clip8(g);
        dst[o + 2] = clip8(b);
      }
    }
    return new RgbImage(outWidth, height, dst);
  }

  private static RgbImage vertical(RgbImage in, Coefficients c) {
    int outHeight = c.start().length;
    int width = in.width();
    int stride = width * 3;
    byte[] src = in.rgb();
    byte[] dst = new byte[Math.multiplyExact(Math.multiplyExact(width, outHeight), 3)];
    for (int y = 0; y < outHeight; y++) {
      int k = y * c.kernelSize();
      int first = c.start()[y] * stride;
      int n = c.count()[y];
      for (int x = 0; x < stride; x++) {
        int acc = 1 << (PRECISION_BITS - 1);
        for (int j = 0; j < n; j++) {
          acc += (src[first + j * stride + x] & 0xff) * c.weights()[k + j];
        }
        dst[y * stride + x] = clip8(acc);
      }
    }
    return new RgbImage(width, outHeight, dst);
  }

  /** Pillow's {@code clip8}: the integer part of a fixed-point sum, clamped to 0..255. */
  private static byte clip8(int acc) {
    int v = acc >> PRECISION_BITS;
    return (byte) (v < 0 ? 0 : Math.min(v, 255));
  }
}
