package dev.owlery.engine.vision.preprocess;

import static dev.owlery.engine.vision.preprocess.HandMadeImages.chunk;
import static dev.owlery.engine.vision.preprocess.HandMadeImages.png;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeout;

import dev.owlery.engine.vision.preprocess.ImageRejectedException.Reason;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/**
 * Decoding and PIL {@code convert("RGB")} rules on hand-made files (expected pixels observed with
 * Pillow 9.4), and every refusal with its message.
 */
class ImageDecoderTest {

  private final ImageDecoder decoder = new ImageDecoder();

  // ---- refusals ----

  @Test
  void rejectsEmptyBytes() {
    assertRejected(new byte[0], Reason.NOT_AN_IMAGE, "the image is empty (0 bytes)");
  }

  @Test
  void rejectsRandomBytes() {
    byte[] noise = new byte[1000];
    new Random(7).nextBytes(noise);
    noise[0] = 0x13; // a seed-independent first byte that starts no format
    assertRejected(noise, Reason.NOT_AN_IMAGE, "the 1000 bytes are not a PNG, JPEG, BMP or GIF image (they start with 13 ");
  }

  @Test
  void rejectsTiffAndWebpByName() {
    assertRejected(new byte[] {'I', 'I', 0x2a, 0, 8, 0, 0, 0}, Reason.UNSUPPORTED_FORMAT,
        "TIFF images are not supported; convert it to PNG, JPEG, BMP or GIF");
    byte[] webp = "RIFF\u0024\0\0\0WEBPVP8 ".getBytes(StandardCharsets.ISO_8859_1);
    assertRejected(webp, Reason.UNSUPPORTED_FORMAT, "WebP images are not supported");
  }

  @Test
  void rejectsTruncatedPng() {
    byte[] whole = png(64, 64, 8, 2, HandMadeImages.rgbScanlines(HandMadeImages.pattern(64, 64)));
    assertThat(decoder.decode(whole).width()).isEqualTo(64);
    byte[] truncated = Arrays.copyOf(whole, whole.length / 2);
    assertRejected(truncated, Reason.TRUNCATED, "the PNG data ends early");
    assertRejected(Arrays.copyOf(whole, 20), Reason.TRUNCATED, "the PNG has no complete IHDR header");
  }

  @Test
  void rejectsTruncatedJpeg() throws IOException {
    byte[] whole = resource("synthetic_q90_420.jpg");
    assertRejected(Arrays.copyOf(whole, whole.length * 2 / 3), Reason.TRUNCATED, "the JPEG data ends early");
  }

  @Test
  void rejectsZeroWidthPng() {
    byte[] zeroWidth = png(0, 10, 8, 2, new byte[0]);
    assertRejected(zeroWidth, Reason.INVALID_DIMENSIONS,
        "the PNG declares a size of 0x10; an image needs at least one pixel in each direction");
  }

  @Test
  void rejectsImagesOverThePixelCap() {
    byte[] twentyByTen = png(20, 10, 8, 2, HandMadeImages.rgbScanlines(HandMadeImages.pattern(20, 10)));
    assertThat(new ImageDecoder(200).decode(twentyByTen).numPixels()).isEqualTo(200);
    assertThatThrownBy(() -> new ImageDecoder(199).decode(twentyByTen))
        .isInstanceOf(ImageRejectedException.class)
        .hasMessage("image rejected: the PNG declares 20x10 = 200 pixels, over the limit of 199 pixels; "
            + "downscale it before sending");
  }

  @Test
  void rejectsAPngDecompressionBombFromItsHeaderAlone() {
    // A valid IHDR declaring 100000 x 100000 (3e10 bytes of RGB) over a 100-byte IDAT.
    byte[] bomb = png(100_000, 100_000, 8, 2, new byte[100]);
    assertThat(bomb.length).isLessThan(200);
    assertTimeout(Duration.ofSeconds(1), () -> assertRejected(bomb, Reason.TOO_LARGE,
        "the PNG declares 100000x100000 = 10000000000 pixels, over the limit of 40000000 pixels"));
  }

  @Test
  void rejectsAJpegBombFromItsFrameHeader() throws IOException {
    byte[] jpeg = resource("synthetic_q90_420.jpg");
    int sof = 2;
    while ((jpeg[sof] & 0xff) != 0xff || (jpeg[sof + 1] & 0xff) != 0xc0) {
      sof += 2 + ((jpeg[sof + 2] & 0xff) << 8 | (jpeg[sof + 3] & 0xff)); // skip marker segment
    }
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    // 30000 x 30000 (libjpeg itself refuses sides over 65500).
    jpeg[sof + 5] = jpeg[sof + 7] = (byte) 0x75;
    jpeg[sof + 6] = jpeg[sof + 8] = (byte) 0x30;
    assertTimeout(Duration.ofSeconds(1), () -> assertRejected(jpeg, Reason.TOO_LARGE,
        "the JPEG declares 30000x30000 = 900000000 pixels, over the limit of 40000000 pixels"));
  }

  @Test
  void rejectsAGifBombDeclaredByItsLogicalScreen() {
    byte[] bomb = HandMadeImages.gif(65535, 65535, 0, 0, -1);
    assertTimeout(Duration.ofSeconds(1), () -> assertRejected(bomb, Reason.TOO_LARGE,
        "the GIF declares 65535x65535 = 4294836225 pixels"));
  }

  // ---- PIL convert("RGB") rules ----

  @Test
  void rgbaDropsAlphaWithoutCompositing() {
    byte[] file = png(2, 1, 8, 6, new byte[] {0, 10, 20, 30, 0, (byte) 200, 100, 50, (byte) 128});
    assertThat(unsigned(decoder.decode(file))).containsExactly(10, 20, 30, 200, 100, 50);
  }

  @Test
  void greyIsReplicatedAndLowBitGreyScaled() {
    assertThat(unsigned(decoder.decode(png(3, 1, 8, 0, new byte[] {0, 0, 77, (byte) 255}))))
        .containsExactly(0, 0, 0, 77, 77, 77, 255, 255, 255);
    // 2-bit grey 0,1,2,3 -> 0,85,170,255 (PIL "L;2").
    assertThat(unsigned(decoder.decode(png(4, 1, 2, 0, new byte[] {0, 0b00011011}))))
        .containsExactly(0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255);
  }

  @Test
  void paletteIsExpanded() {
    byte[] plte = chunk("PLTE", new byte[] {1, 2, 3, 40, 50, 60, (byte) 250, (byte) 251, (byte) 252});
    byte[] trns = chunk("tRNS", new byte[] {0, (byte) 128});
    byte[] file = png(3, 1, 8, 3, new byte[] {0, 2, 0, 1}, plte, trns);
    assertThat(unsigned(decoder.decode(file))).containsExactly(250, 251, 252, 1, 2, 3, 40, 50, 60);
  }

  @Test
  void sixteenBitColourKeepsTheHighByte() {
    int[] values = {0x0010, 0x00ff, 0x0100, 0x1234, 0xffff};
    ByteArrayOutputStream row = new ByteArrayOutputStream();
    row.write(0);
    for (int v : values) {
      for (int s : new int[] {v, (v * 7) & 0xffff, 0xffff - v}) {
        row.write(s >> 8);
        row.write(s);
      }
    }
    // Pillow 9.4: [(0,0,255), (0,6,255), (1,7,254), (18,127,237), (255,255,0)].
    assertThat(unsigned(decoder.decode(png(5, 1, 16, 2, row.toByteArray()))))
        .containsExactly(0, 0, 255, 0, 6, 255, 1, 7, 254, 18, 127, 237, 255, 255, 0);
  }

  @Test
  void sixteenBitGreyClipsAt255AsPilModeI() {
    byte[] row = {0, 0x00, 0x10, 0x00, (byte) 0xff, 0x01, 0x00, 0x12, 0x34, (byte) 0xff, (byte) 0xff};
    // Pillow 9.4 opens it as mode "I" and convert("RGB") clips: [16, 255, 255, 255, 255].
    assertThat(unsigned(decoder.decode(png(5, 1, 16, 0, row))))
        .containsExactly(16, 16, 16, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255);
    // Grey + alpha at 16 bits is "LA;16B" in PIL: the high byte, replicated.
    byte[] withAlpha = {0, 0x12, 0x34, 0x11, 0x11, 0x01, 0x00, 0x11, 0x11};
    assertThat(unsigned(decoder.decode(png(2, 1, 16, 4, withAlpha)))).containsExactly(18, 18, 18, 1, 1, 1);
  }

  @Test
  void gifFirstFrameIsPlacedOnItsLogicalScreenAsPilDoes() {
    int[] red = {255, 0, 0};
    int[] blue = {0, 0, 255};
    int[] white = {255, 255, 255};
    // Screen 4x3, frame 2x1 at (1,1) holding blue, white; outside: index 0 (red).
    RgbImage plain = decoder.decode(HandMadeImages.gif(4, 3, 1, 1, -1));
    assertThat(plain.width()).isEqualTo(4);
    assertThat(plain.height()).isEqualTo(3);
    assertThat(pixel(plain, 0, 0)).containsExactly(red);
    assertThat(pixel(plain, 1, 1)).containsExactly(blue);
    assertThat(pixel(plain, 2, 1)).containsExactly(white);
    assertThat(pixel(plain, 3, 2)).containsExactly(red);
    // With transparent index 3 the outside takes index 3's colour (white).
    RgbImage transparent = decoder.decode(HandMadeImages.gif(4, 3, 1, 1, 3));
    assertThat(pixel(transparent, 0, 0)).containsExactly(white);
    assertThat(pixel(transparent, 1, 1)).containsExactly(blue);
    // A frame reaching past a 2x2 screen grows the picture to 3x2.
    RgbImage grown = decoder.decode(HandMadeImages.gif(2, 2, 1, 1, -1));
    assertThat(grown.width()).isEqualTo(3);
    assertThat(grown.height()).isEqualTo(2);
    assertThat(pixel(grown, 2, 1)).containsExactly(white);
  }

  @Test
  void bmpRoundTripsExactly() throws IOException {
    RgbImage source = HandMadeImages.pattern(13, 7);
    BufferedImage image = new BufferedImage(13, 7, BufferedImage.TYPE_3BYTE_BGR);
    for (int y = 0; y < 7; y++) {
      for (int x = 0; x < 13; x++) {
        image.setRGB(x, y, source.get(x, y, 0) << 16 | source.get(x, y, 1) << 8 | source.get(x, y, 2));
      }
    }
    ByteArrayOutputStream bmp = new ByteArrayOutputStream();
    assertThat(ImageIO.write(image, "bmp", bmp)).isTrue();
    assertThat(decoder.decode(bmp.toByteArray())).isEqualTo(source);
  }

  @Test
  void jpegDecodesToThePixelsPilDecodes() throws IOException {
    // Both files were written by Pillow 9.4 (libjpeg-turbo 2.1) from a synthetic 64x48 picture, and
    // the SHA-256 is of PIL's decoded RGB bytes. Spec §1.3 allows ±1 between libjpeg builds; on
    // these baseline 4:2:0 and progressive 4:4:4 files the JDK's decoder measured 0 difference.
    assertThat(sha256(decoder.decode(resource("synthetic_q90_420.jpg"))))
        .isEqualTo("fd609595310e22a0796f207f19ee55aa876e7b3cc402575ad81dd7d0c7e3b524");
    assertThat(sha256(decoder.decode(resource("synthetic_q75_444_progressive.jpg"))))
        .isEqualTo("e267cc79f83b78932f2669313ebaa54b82fc2310076e99854cff53039dae309a");
  }

  // ---- helpers ----

  private void assertRejected(byte[] bytes, Reason reason, String messagePart) {
    assertThatThrownBy(() -> decoder.decode(bytes))
        .isInstanceOfSatisfying(ImageRejectedException.class, e -> assertThat(e.reason()).isEqualTo(reason))
        .hasMessageContaining(messagePart);
  }

  private static int[] unsigned(RgbImage image) {
    int[] out = new int[image.rgb().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = image.rgb()[i] & 0xff;
    }
    return out;
  }

  private static int[] pixel(RgbImage image, int x, int y) {
    return new int[] {image.get(x, y, 0), image.get(x, y, 1), image.get(x, y, 2)};
  }

  static byte[] resource(String name) throws IOException {
    try (InputStream in = ImageDecoderTest.class.getResourceAsStream(name)) {
      assertThat(in).as("test resource " + name).isNotNull();
      return in.readAllBytes();
    }
  }

  static String sha256(RgbImage image) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(image.rgb()));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
