package dev.owlery.engine.vision.preprocess;

/**
 * One picture's model input, {@code pixel_values[k]}: float32, channel-major {@code [3, height, width]}
 * in R, G, B order, element (c, y, x) at {@code data[(c * height + y) * width + x]}. The array is
 * held, not copied.
 */
public record PixelValues(int height, int width, float[] data) {

  public static final int NUM_CHANNELS = 3;

  public PixelValues {
    if (height <= 0 || width <= 0 || data.length != (long) NUM_CHANNELS * height * width) {
      throw new IllegalArgumentException("pixel values [3, %d, %d] need %d floats, got %d"
          .formatted(height, width, (long) NUM_CHANNELS * height * width, data.length));
    }
  }

  /** Element (c, y, x). */
  public float get(int c, int y, int x) {
    return data[(c * height + y) * width + x];
  }

  @Override
  public String toString() {
    return "PixelValues[3x%dx%d]".formatted(height, width);
  }
}
