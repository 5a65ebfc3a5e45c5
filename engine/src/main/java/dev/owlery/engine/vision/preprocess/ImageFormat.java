package dev.owlery.engine.vision.preprocess;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/** The image file formats we decode, told apart by their leading bytes (never by a file name). */
public enum ImageFormat {
  PNG("png"),
  JPEG("jpeg"),
  BMP("bmp"),
  GIF("gif");

  /** What a rejection message lists as accepted. */
  static final String ACCEPTED = "PNG, JPEG, BMP or GIF";

  private final String imageIoName;

  ImageFormat(String imageIoName) {
    this.imageIoName = imageIoName;
  }

  /** The javax.imageio format name of this format's reader. */
  String imageIoName() {
    return imageIoName;
  }

  /**
   * The format of {@code bytes} from its signature.
   *
   * @throws ImageRejectedException NOT_AN_IMAGE for empty or unrecognised bytes, UNSUPPORTED_FORMAT for
   *     a recognised format we do not decode (named in the message)
   */
  public static ImageFormat sniff(byte[] bytes) {
    if (bytes.length == 0) {
      throw new ImageRejectedException(ImageRejectedException.Reason.NOT_AN_IMAGE,
          "the image is empty (0 bytes); send the bytes of a %s file".formatted(ACCEPTED));
    }
    if (startsWith(bytes, 0, 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a)) {
      return PNG;
    }
    if (startsWith(bytes, 0, 0xff, 0xd8, 0xff)) {
      return JPEG;
    }
    if (startsWith(bytes, 0, 'G', 'I', 'F', '8', '7', 'a') || startsWith(bytes, 0, 'G', 'I', 'F', '8', '9', 'a')) {
      return GIF;
    }
    if (startsWith(bytes, 0, 'B', 'M') && bytes.length >= 26) {
      return BMP;
    }
    String other = unsupportedFormatName(bytes);
    if (other != null) {
      throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
          "%s images are not supported; convert it to %s".formatted(other, ACCEPTED));
    }
    int shown = Math.min(bytes.length, 8);
    throw new ImageRejectedException(ImageRejectedException.Reason.NOT_AN_IMAGE,
        "the %d bytes are not a %s image (they start with %s)"
            .formatted(bytes.length, ACCEPTED, HexFormat.ofDelimiter(" ").formatHex(bytes, 0, shown)));
  }

  /** The name of a well-known image format we do not decode, or null. */
  private static String unsupportedFormatName(byte[] b) {
    if (startsWith(b, 0, 'I', 'I', 0x2a, 0x00) || startsWith(b, 0, 'M', 'M', 0x00, 0x2a)) {
      return "TIFF";
    }
    if (startsWith(b, 0, 'R', 'I', 'F', 'F') && startsWith(b, 8, 'W', 'E', 'B', 'P')) {
      return "WebP";
    }
    if (startsWith(b, 4, 'f', 't', 'y', 'p')) {
      String brand = b.length >= 12 ? new String(b, 8, 4, StandardCharsets.ISO_8859_1) : "";
      return switch (brand) {
        case "avif", "avis" -> "AVIF";
        case "heic", "heix", "hevc", "heim", "heis", "mif1", "msf1" -> "HEIF/HEIC";
        default -> null;
      };
    }
    if (startsWith(b, 0, 0x00, 0x00, 0x00, 0x0c, 'j', 'P', ' ', ' ') || startsWith(b, 0, 0xff, 0x4f, 0xff, 0x51)) {
      return "JPEG 2000";
    }
    if (startsWith(b, 0, 0xff, 0x0a) || startsWith(b, 0, 0x00, 0x00, 0x00, 0x0c, 'J', 'X', 'L', ' ')) {
      return "JPEG XL";
    }
    if (startsWith(b, 0, 0x00, 0x00, 0x01, 0x00)) {
      return "ICO";
    }
    if (startsWith(b, 0, '8', 'B', 'P', 'S')) {
      return "Photoshop (PSD)";
    }
    if (startsWith(b, 0, '%', 'P', 'D', 'F')) {
      return "PDF";
    }
    if (startsWith(b, 0, '<', '?', 'x', 'm', 'l') || startsWith(b, 0, '<', 's', 'v', 'g')) {
      return "SVG/XML";
    }
    return null;
  }

  private static boolean startsWith(byte[] bytes, int offset, int... signature) {
    if (bytes.length < offset + signature.length) {
      return false;
    }
    for (int i = 0; i < signature.length; i++) {
      if ((bytes[offset + i] & 0xff) != signature[i]) {
        return false;
      }
    }
    return true;
  }
}
