package dev.owlery.engine.vision.preprocess;

import dev.owlery.engine.vision.preprocess.ImageRejectedException.Reason;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes PNG, JPEG, BMP and GIF (first frame) bytes to {@link RgbImage}, the step the official code
 * does with {@code Image.open(...).convert("RGB")} (spec §1.2 step 1; conversion rules in
 * {@link RgbConversion}; a GIF's first frame is placed on its logical screen as PIL does, see
 * {@link GifFirstFrame}). Decoding is javax.imageio's.
 *
 * <p>Exactness: PNG, BMP and GIF decode losslessly, so their pixels equal PIL's. JPEG decoding is
 * the JDK's bundled IJG libjpeg (ISLOW IDCT, fancy upsampling), while PIL uses libjpeg-turbo; the
 * two may differ by ±1 in a sample on some files (spec §1.3). EXIF orientation is not applied, as
 * PIL's {@code Image.open} does not apply it either.
 *
 * <p>Guards: the format is recognised from its signature; the dimensions are read from the header
 * before any pixel is decoded, so an image declaring more than {@code maxPixels} pixels (a
 * decompression bomb) is refused without allocating; a zero-sized, truncated or damaged file is
 * refused. Every refusal is an {@link ImageRejectedException} whose message says what to do.
 *
 * <p>Thread-safe: each call uses its own reader.
 */
public final class ImageDecoder {

  /** Default cap on width × height: 40 megapixels. */
  public static final long DEFAULT_MAX_PIXELS = 40_000_000L;

  private final long maxPixels;

  /** A decoder with the default pixel cap. */
  public ImageDecoder() {
    this(DEFAULT_MAX_PIXELS);
  }

  /** A decoder refusing images of more than {@code maxPixels} pixels. */
  public ImageDecoder(long maxPixels) {
    if (maxPixels <= 0) {
      throw new IllegalArgumentException("maxPixels must be > 0, got " + maxPixels);
    }
    this.maxPixels = maxPixels;
  }

  public long maxPixels() {
    return maxPixels;
  }

  /**
   * The RGB pixels of an image file's bytes.
   *
   * @throws ImageRejectedException when the bytes are not an image we can and may decode
   */
  public RgbImage decode(byte[] bytes) {
    ImageFormat format = ImageFormat.sniff(bytes);
    PngHeader png = format == ImageFormat.PNG ? PngHeader.parse(bytes) : null;
    if (png != null) {
      checkDimensions(format, png.width(), png.height());
    }
    ImageReader reader = newReader(format);
    List<String> warnings = new ArrayList<>();
    reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
    try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))) {
      reader.setInput(in, true, format != ImageFormat.GIF);
      checkDimensions(format, readHeaderDimension(format, reader, true), readHeaderDimension(format, reader, false));
      GifFirstFrame.Placement gif = format == ImageFormat.GIF ? gifPlacement(reader, bytes) : null;
      BufferedImage image = readPixels(format, reader);
      checkWarnings(format, warnings);
      boolean greyClipsAt255 = png != null && png.bitDepth() == 16 && png.colorType() == PngHeader.COLOR_TYPE_GREY;
      RgbImage rgb = RgbConversion.toRgb(image, greyClipsAt255);
      if (gif != null) {
        gif = new GifFirstFrame.Placement(gif.left(), gif.top(), rgb.width(), rgb.height(), gif.fillIndex());
        rgb = GifFirstFrame.place(rgb, image, gif, GifFirstFrame.canvasSize(GifFirstFrame.screenSize(bytes), gif));
      }
      return rgb;
    } catch (IOException e) {
      throw new ImageRejectedException(Reason.CORRUPT, "cannot read the %s data: %s".formatted(format, e.getMessage()), e);
    } finally {
      reader.dispose();
    }
  }

  /** Where PIL puts the first frame, with the canvas it needs checked against the cap before decoding. */
  private GifFirstFrame.Placement gifPlacement(ImageReader reader, byte[] bytes) {
    GifFirstFrame.Placement placement;
    try {
      placement = GifFirstFrame.Placement.of(reader.getImageMetadata(0));
    } catch (IOException | RuntimeException e) {
      throw new ImageRejectedException(Reason.CORRUPT,
          "cannot read the GIF's first image descriptor (%s); re-encode the image".formatted(describe(e)), e);
    }
    int[] canvas = GifFirstFrame.canvasSize(GifFirstFrame.screenSize(bytes), placement);
    checkDimensions(ImageFormat.GIF, canvas[0], canvas[1]);
    return placement;
  }

  private static ImageReader newReader(ImageFormat format) {
    Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format.imageIoName());
    if (!readers.hasNext()) {
      throw new IllegalStateException("this JDK has no javax.imageio reader for " + format);
    }
    return readers.next();
  }

  private void checkDimensions(ImageFormat format, long width, long height) {
    if (width <= 0 || height <= 0) {
      throw new ImageRejectedException(Reason.INVALID_DIMENSIONS,
          "the %s declares a size of %dx%d; an image needs at least one pixel in each direction"
              .formatted(format, width, height));
    }
    if (width * height > maxPixels) {
      throw new ImageRejectedException(Reason.TOO_LARGE,
          "the %s declares %dx%d = %d pixels, over the limit of %d pixels; downscale it before sending"
              .formatted(format, width, height, width * height, maxPixels));
    }
  }

  private static int readHeaderDimension(ImageFormat format, ImageReader reader, boolean width) {
    try {
      return width ? reader.getWidth(0) : reader.getHeight(0);
    } catch (IndexOutOfBoundsException e) {
      throw new ImageRejectedException(Reason.CORRUPT, "the %s holds no image".formatted(format), e);
    } catch (IOException | RuntimeException e) {
      throw new ImageRejectedException(truncation(e) ? Reason.TRUNCATED : Reason.INVALID_DIMENSIONS,
          "cannot read the %s header (%s); the file is truncated or not a real %s"
              .formatted(format, describe(e), format), e);
    }
  }

  private static BufferedImage readPixels(ImageFormat format, ImageReader reader) {
    try {
      return reader.read(0);
    } catch (IOException | RuntimeException e) {
      if (format == ImageFormat.JPEG && String.valueOf(e.getMessage()).contains("Unsupported Image Type")) {
        throw new ImageRejectedException(Reason.UNSUPPORTED_FORMAT,
            "this JPEG's colour model (CMYK or YCCK) is not supported; convert it to an RGB JPEG or PNG", e);
      }
      if (truncation(e)) {
        throw new ImageRejectedException(Reason.TRUNCATED,
            "the %s data ends early (%s); the file is truncated, send the complete file".formatted(format, describe(e)), e);
      }
      throw new ImageRejectedException(Reason.CORRUPT,
          "the %s pixel data is damaged (%s); re-encode the image".formatted(format, describe(e)), e);
    }
  }

  /** libjpeg reports a file that ends early as warnings and fills the rest with grey; PIL refuses it. */
  private static void checkWarnings(ImageFormat format, List<String> warnings) {
    for (String warning : warnings) {
      String lower = warning.toLowerCase(Locale.ROOT);
      if (lower.contains("truncated") || lower.contains("premature end")) {
        throw new ImageRejectedException(Reason.TRUNCATED,
            "the %s data ends early (%s); the file is truncated, send the complete file".formatted(format, warning));
      }
    }
  }

  private static boolean truncation(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof EOFException) {
        return true;
      }
    }
    return false;
  }

  /** The exception's message with its causes', e.g. "Error reading PNG image data: Unexpected end of ZLIB input stream". */
  private static String describe(Throwable e) {
    StringBuilder text = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
      if (!text.toString().contains(message)) {
        text.append(text.isEmpty() ? "" : ": ").append(message);
      }
    }
    return text.toString();
  }

  /** The PNG IHDR fields we need before decoding: the declared size and the sample layout. */
  record PngHeader(long width, long height, int bitDepth, int colorType) {

    static final int COLOR_TYPE_GREY = 0;

    /** The IHDR chunk, which the PNG specification requires to come first, right after the signature. */
    static PngHeader parse(byte[] bytes) {
      if (bytes.length < 26 || bytes[12] != 'I' || bytes[13] != 'H' || bytes[14] != 'D' || bytes[15] != 'R') {
        throw new ImageRejectedException(bytes.length < 26 ? Reason.TRUNCATED : Reason.CORRUPT,
            "the PNG has no complete IHDR header right after its signature (%d bytes in all); send the complete file"
                .formatted(bytes.length));
      }
      return new PngHeader(uint32(bytes, 16), uint32(bytes, 20), bytes[24] & 0xff, bytes[25] & 0xff);
    }

    private static long uint32(byte[] b, int at) {
      return ((b[at] & 0xffL) << 24) | ((b[at + 1] & 0xffL) << 16) | ((b[at + 2] & 0xffL) << 8) | (b[at + 3] & 0xffL);
    }
  }
}
