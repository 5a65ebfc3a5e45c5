package dev.owlery.engine.vision.preprocess;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/** Image files built byte by byte, so tests control every header field (sizes, depths, frames). */
final class HandMadeImages {

  private HandMadeImages() {}

  /**
   * A PNG with the given IHDR and one IDAT holding {@code scanlines} (each row already prefixed by
   * its filter byte), plus any extra chunks placed before IDAT.
   */
  static byte[] png(long width, long height, int bitDepth, int colorType, byte[] scanlines, byte[]... extraChunks) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a});
    ByteBuffer ihdr = ByteBuffer.allocate(13);
    ihdr.putInt((int) width).putInt((int) height).put((byte) bitDepth).put((byte) colorType);
    ihdr.put((byte) 0).put((byte) 0).put((byte) 0);
    out.writeBytes(chunk("IHDR", ihdr.array()));
    for (byte[] extra : extraChunks) {
      out.writeBytes(extra);
    }
    out.writeBytes(chunk("IDAT", deflate(scanlines)));
    out.writeBytes(chunk("IEND", new byte[0]));
    return out.toByteArray();
  }

  /** One PNG chunk: length, type, data, CRC-32 of type and data. */
  static byte[] chunk(String type, byte[] data) {
    byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
    CRC32 crc = new CRC32();
    crc.update(typeBytes);
    crc.update(data);
    return ByteBuffer.allocate(12 + data.length)
        .putInt(data.length).put(typeBytes).put(data).putInt((int) crc.getValue()).array();
  }

  /** 8-bit RGB scanlines (filter 0) of a {@link RgbImage}. */
  static byte[] rgbScanlines(RgbImage image) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int y = 0; y < image.height(); y++) {
      out.write(0);
      out.write(image.rgb(), y * image.width() * 3, image.width() * 3);
    }
    return out.toByteArray();
  }

  /** A deterministic busy test pattern: sharp edges in every channel, so resampling clips. */
  static RgbImage pattern(int width, int height) {
    byte[] rgb = new byte[width * height * 3];
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        for (int c = 0; c < 3; c++) {
          rgb[(y * width + x) * 3 + c] = (byte) ((x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 11) % 256);
        }
      }
    }
    return new RgbImage(width, height, rgb);
  }

  /**
   * A GIF89a whose logical screen is {@code screenWidth × screenHeight}, with the 4-colour palette red,
   * green, blue, white (background index 1) and one 2×1 frame at (left, top) holding indices 2, 3;
   * {@code transparentIndex} < 0 for no graphic control extension.
   */
  static byte[] gif(int screenWidth, int screenHeight, int left, int top, int transparentIndex) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes("GIF89a".getBytes(StandardCharsets.US_ASCII));
    out.writeBytes(le16(screenWidth));
    out.writeBytes(le16(screenHeight));
    out.writeBytes(new byte[] {(byte) 0b10000001, 1, 0});
    out.writeBytes(new byte[] {(byte) 255, 0, 0, 0, (byte) 255, 0, 0, 0, (byte) 255, (byte) 255, (byte) 255, (byte) 255});
    if (transparentIndex >= 0) {
      out.writeBytes(new byte[] {0x21, (byte) 0xf9, 4, 1, 0, 0, (byte) transparentIndex, 0});
    }
    out.write(0x2c);
    out.writeBytes(le16(left));
    out.writeBytes(le16(top));
    out.writeBytes(le16(2));
    out.writeBytes(le16(1));
    out.write(0);
    // LZW, minimum code size 2, 3-bit codes: clear (4), 2, 3, end (5) packed LSB first.
    out.writeBytes(new byte[] {2, 2, (byte) 0xd4, 0x0a, 0});
    out.write(0x3b);
    return out.toByteArray();
  }

  private static byte[] le16(int v) {
    return new byte[] {(byte) v, (byte) (v >> 8)};
  }

  private static byte[] deflate(byte[] data) {
    Deflater deflater = new Deflater();
    deflater.setInput(data);
    deflater.finish();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buffer = new byte[8192];
    while (!deflater.finished()) {
      out.write(buffer, 0, deflater.deflate(buffer));
    }
    deflater.end();
    return out.toByteArray();
  }
}
