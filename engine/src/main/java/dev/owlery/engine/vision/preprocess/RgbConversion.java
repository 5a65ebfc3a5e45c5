package dev.owlery.engine.vision.preprocess;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DirectColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;

/**
 * A decoded {@link BufferedImage} turned into 8-bit RGB the way PIL's {@code convert("RGB")} does,
 * from the raw raster samples (never {@code getRGB}, whose colour-space conversion would change grey
 * values):
 *
 * <ul>
 *   <li>alpha is dropped, not composited onto a background;
 *   <li>grey (1 sample) is replicated to R = G = B;
 *   <li>palette images take their palette colours (palette alpha dropped; an index past the palette
 *       reads as black);
 *   <li>16-bit samples keep their high byte ({@code v >> 8}: PIL's {@code RGB;16B}, {@code RGBA;16B},
 *       {@code LA;16B} unpackers), <b>except</b> 16-bit grey without an alpha channel, which PIL opens
 *       as a 32-bit integer image (mode {@code I}) and converts by clipping, {@code min(v, 255)}: most
 *       such pictures come out white, as they do in the official code (checked on Pillow 9.4);
 *   <li>packed samples narrower than 8 bits (BMP 5-5-5, 5-6-5) scale as {@code v * 255 / (2^bits - 1)},
 *       truncated, as PIL's {@code BGR;15} / {@code BGR;16} unpackers; a channel given no bits or more
 *       than 8 by its mask is refused.
 * </ul>
 */
final class RgbConversion {

  private RgbConversion() {}

  /**
   * The RGB bytes of {@code image}.
   *
   * @param greyClipsAt255 true for a 16-bit grey PNG without alpha (colour type 0), which PIL clips
   */
  static RgbImage toRgb(BufferedImage image, boolean greyClipsAt255) {
    ColorModel cm = image.getColorModel();
    Raster raster = image.getRaster();
    int width = raster.getWidth();
    int height = raster.getHeight();
    byte[] rgb = new byte[Math.multiplyExact(Math.multiplyExact(width, height), 3)];
    switch (cm) {
      case IndexColorModel palette -> fromPalette(raster, palette, rgb);
      case ComponentColorModel components -> fromComponents(raster, components, greyClipsAt255, rgb);
      case DirectColorModel packed -> fromPacked(raster, packed, rgb);
      default -> throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
          "the decoder produced an unsupported pixel layout (%s)".formatted(cm.getClass().getSimpleName()));
    }
    return new RgbImage(width, height, rgb);
  }

  private static void fromPalette(Raster raster, IndexColorModel palette, byte[] rgb) {
    int size = palette.getMapSize();
    byte[] reds = new byte[size];
    byte[] greens = new byte[size];
    byte[] blues = new byte[size];
    palette.getReds(reds);
    palette.getGreens(greens);
    palette.getBlues(blues);
    int width = raster.getWidth();
    int[] row = new int[width];
    int o = 0;
    for (int y = 0; y < raster.getHeight(); y++) {
      raster.getSamples(0, y, width, 1, 0, row);
      for (int x = 0; x < width; x++, o += 3) {
        int index = row[x];
        if (index < size) {
          rgb[o] = reds[index];
          rgb[o + 1] = greens[index];
          rgb[o + 2] = blues[index];
        }
      }
    }
  }

  private static void fromComponents(Raster raster, ComponentColorModel cm, boolean greyClipsAt255, byte[] rgb) {
    int colorComponents = cm.getNumColorComponents();
    int spaceType = cm.getColorSpace().getType();
    boolean grey = colorComponents == 1 && spaceType == ColorSpace.TYPE_GRAY;
    boolean color = colorComponents == 3 && spaceType == ColorSpace.TYPE_RGB;
    if (!grey && !color) {
      throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
          "only grey and RGB images are supported, this one has %d colour components (colour space type %d); convert it to RGB"
              .formatted(colorComponents, spaceType));
    }
    int bits = cm.getComponentSize(0);
    if (bits != 8 && bits != 16) {
      throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
          "%d-bit samples are not supported (only 8 and 16)".formatted(bits));
    }
    int width = raster.getWidth();
    int bands = raster.getNumBands();
    int[] row = new int[width * bands];
    int o = 0;
    for (int y = 0; y < raster.getHeight(); y++) {
      raster.getPixels(0, y, width, 1, row);
      for (int x = 0; x < width; x++, o += 3) {
        int p = x * bands;
        if (grey) {
          byte v = (byte) to8Bit(row[p], bits, greyClipsAt255);
          rgb[o] = v;
          rgb[o + 1] = v;
          rgb[o + 2] = v;
        } else {
          rgb[o] = (byte) to8Bit(row[p], bits, false);
          rgb[o + 1] = (byte) to8Bit(row[p + 1], bits, false);
          rgb[o + 2] = (byte) to8Bit(row[p + 2], bits, false);
        }
      }
    }
  }

  private static int to8Bit(int sample, int bits, boolean clip) {
    if (bits == 8) {
      return sample;
    }
    return clip ? Math.min(sample, 255) : sample >> 8;
  }

  private static void fromPacked(Raster raster, DirectColorModel cm, byte[] rgb) {
    int[] maxima = new int[3];
    for (int c = 0; c < 3; c++) {
      int bits = cm.getComponentSize(c);
      // A BMP's bit masks may give a channel no bits at all, or more than a byte; PIL refuses both.
      if (bits < 1 || bits > 8) {
        throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
            "the image's bit masks give the %s channel %d bits (1 to 8 are supported); convert it to an RGB PNG or BMP"
                .formatted(new String[] {"red", "green", "blue"}[c], bits));
      }
      maxima[c] = (1 << bits) - 1;
    }
    int width = raster.getWidth();
    int bands = raster.getNumBands();
    int[] row = new int[width * bands];
    int o = 0;
    for (int y = 0; y < raster.getHeight(); y++) {
      raster.getPixels(0, y, width, 1, row);
      for (int x = 0; x < width; x++, o += 3) {
        for (int c = 0; c < 3; c++) {
          int v = row[x * bands + c];
          rgb[o + c] = (byte) (maxima[c] == 255 ? v : v * 255 / maxima[c]);
        }
      }
    }
  }
}
