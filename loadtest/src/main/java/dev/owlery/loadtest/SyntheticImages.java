package dev.owlery.loadtest;

import com.google.protobuf.ByteString;
import dev.owlery.proto.v1.Image;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;

/**
 * Pictures made up for synthetic requests, PNG-encoded in memory: a seeded gradient between four
 * random corner colours with seeded noise over it, so that no two seeds give the same bytes.
 * {@link Mode#REPEATED} sends the same {@code count} pictures with every request of the run (after
 * the first request, the coordinator's image-embedding cache holds them); {@link Mode#DISTINCT}
 * sends pictures no other request of the run carries: those of request {@code i} of pass {@code p}
 * depend on the seed, {@code p} and {@code i}, so the levels of a sweep do not hit the cache with
 * the warm-up's or each other's pictures. Thread-safe.
 */
public final class SyntheticImages implements Workload.Pictures {

  /** Whether every request carries the same pictures or pictures of its own. */
  public enum Mode { REPEATED, DISTINCT }

  /** Noise added to each channel of each pixel, +- this; keeps two gradients' bytes apart. */
  private static final int NOISE = 16;

  private final int count;
  private final int width;
  private final int height;
  private final Mode mode;
  private final long seed;
  /** The pictures of {@link Mode#REPEATED}, made once. */
  private final List<Image> repeated;

  /**
   * @param count pictures per request, >= 1
   * @param width pixels, >= 1
   * @param height pixels, >= 1
   */
  public SyntheticImages(int count, int width, int height, Mode mode, long seed) {
    if (count < 1 || width < 1 || height < 1) {
      throw new IllegalArgumentException("synthetic images need a count and a size >= 1, got %d of %dx%d"
          .formatted(count, width, height));
    }
    this.count = count;
    this.width = width;
    this.height = height;
    this.mode = mode;
    this.seed = seed;
    this.repeated = mode == Mode.REPEATED ? make(-1, -1) : null;
  }

  @Override
  public List<Image> of(int pass, long index) {
    return mode == Mode.REPEATED ? repeated : make(pass, index);
  }

  private List<Image> make(int pass, long index) {
    List<Image> images = new ArrayList<>(count);
    for (int slot = 0; slot < count; slot++) {
      images.add(Image.newBuilder().setData(png(picture(random(pass, index, slot)))).build());
    }
    return List.copyOf(images);
  }

  /** A generator for one picture alone, from the seed, the pass, the request and the slot. */
  private Random random(int pass, long index, int slot) {
    long z = seed ^ 0x5DEECE66DL;
    for (long part : new long[] {pass, index, slot}) {
      z += (part + 1) * 0x9E3779B97F4A7C15L;
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      z ^= z >>> 31;
    }
    return new Random(z);
  }

  private BufferedImage picture(Random random) {
    int[][] corners = new int[4][3]; // top-left, top-right, bottom-left, bottom-right; RGB
    for (int[] corner : corners) {
      for (int c = 0; c < 3; c++) {
        corner[c] = random.nextInt(256);
      }
    }
    BufferedImage picture = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < height; y++) {
      double v = height == 1 ? 0 : (double) y / (height - 1);
      for (int x = 0; x < width; x++) {
        double u = width == 1 ? 0 : (double) x / (width - 1);
        int rgb = 0;
        for (int c = 0; c < 3; c++) {
          double top = corners[0][c] * (1 - u) + corners[1][c] * u;
          double bottom = corners[2][c] * (1 - u) + corners[3][c] * u;
          int value = (int) Math.round(top * (1 - v) + bottom * v) + random.nextInt(2 * NOISE + 1) - NOISE;
          rgb = rgb << 8 | Math.clamp(value, 0, 255);
        }
        picture.setRGB(x, y, rgb);
      }
    }
    return picture;
  }

  private static ByteString png(BufferedImage picture) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try {
      ImageIO.write(picture, "png", bytes);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot PNG-encode a synthetic image: " + e.getMessage(), e);
    }
    return ByteString.copyFrom(bytes.toByteArray());
  }

  /**
   * Reads {@code WIDTHxHEIGHT}, e.g. {@code 448x448}, as {@code {width, height}}.
   *
   * @throws IllegalArgumentException naming {@code option}, the form expected and what was given
   */
  static int[] parseSize(String option, String size) {
    String[] parts = size.toLowerCase(java.util.Locale.ROOT).split("x", -1);
    try {
      if (parts.length == 2) {
        int width = Integer.parseInt(parts[0]);
        int height = Integer.parseInt(parts[1]);
        if (width >= 1 && height >= 1) {
          return new int[] {width, height};
        }
      }
    } catch (NumberFormatException e) {
      // said below
    }
    throw new IllegalArgumentException("%s must be WIDTHxHEIGHT in pixels, both >= 1, e.g. 448x448, got '%s'"
        .formatted(option, size));
  }
}
