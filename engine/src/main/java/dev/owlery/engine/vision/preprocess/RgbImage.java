package dev.owlery.engine.vision.preprocess;

import java.util.Arrays;

/**
 * An 8-bit RGB picture, row-major HWC: the byte of channel {@code c} (0 = R, 1 = G, 2 = B) of pixel
 * (x, y) is {@code rgb[(y * width + x) * 3 + c]}, read unsigned. The array is held, not copied.
 */
public record RgbImage(int width, int height, byte[] rgb) {

  public RgbImage {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException("an RGB image needs width and height > 0, got %dx%d".formatted(width, height));
    }
    if (rgb.length != (long) width * height * 3) {
      throw new IllegalArgumentException(
          "an RGB image of %dx%d needs %d bytes, got %d".formatted(width, height, (long) width * height * 3, rgb.length));
    }
  }

  /** A new image of the given size with every pixel set to {@code fill} (R, G, B in 0..255). */
  public static RgbImage filled(int width, int height, int[] fill) {
    byte[] rgb = new byte[Math.multiplyExact(Math.multiplyExact(width, height), 3)];
    for (int i = 0; i < rgb.length; i += 3) {
      rgb[i] = (byte) fill[0];
      rgb[i + 1] = (byte) fill[1];
      rgb[i + 2] = (byte) fill[2];
    }
    return new RgbImage(width, height, rgb);
  }

  /** Channel {@code c} of pixel (x, y), 0..255. */
  public int get(int x, int y, int c) {
    return rgb[(y * width + x) * 3 + c] & 0xff;
  }

  public long numPixels() {
    return (long) width * height;
  }

  /** A deep copy (PIL's {@code Image.copy()}). */
  public RgbImage copy() {
    return new RgbImage(width, height, rgb.clone());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RgbImage other
        && width == other.width
        && height == other.height
        && Arrays.equals(rgb, other.rgb);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * width + height) + Arrays.hashCode(rgb);
  }

  @Override
  public String toString() {
    return "RgbImage[%dx%d]".formatted(width, height);
  }
}
