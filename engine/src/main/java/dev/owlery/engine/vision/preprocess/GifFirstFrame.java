package dev.owlery.engine.vision.preprocess;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import javax.imageio.metadata.IIOMetadata;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

/**
 * A GIF's first frame as PIL opens it (checked on Pillow 9.4): the picture is the logical screen,
 * grown to hold the frame if the frame reaches past it; pixels outside the frame take palette index
 * {@code transparentColorIndex} when the frame declares one, else index 0. javax.imageio returns
 * only the frame's own rectangle, so the frame is placed on that screen here.
 */
final class GifFirstFrame {

  private static final String IMAGE_FORMAT = "javax_imageio_gif_image_1.0";

  /** The frame rectangle and transparency of the first image. */
  record Placement(int left, int top, int width, int height, int fillIndex) {

    static Placement of(IIOMetadata metadata) {
      Node root = metadata.getAsTree(IMAGE_FORMAT);
      int left = 0;
      int top = 0;
      int width = 0;
      int height = 0;
      int fillIndex = 0;
      for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
        NamedNodeMap a = n.getAttributes();
        if (n.getNodeName().equals("ImageDescriptor")) {
          left = intAttribute(a, "imageLeftPosition");
          top = intAttribute(a, "imageTopPosition");
          width = intAttribute(a, "imageWidth");
          height = intAttribute(a, "imageHeight");
        } else if (n.getNodeName().equals("GraphicControlExtension")
            && "TRUE".equalsIgnoreCase(a.getNamedItem("transparentColorFlag").getNodeValue())) {
          fillIndex = intAttribute(a, "transparentColorIndex");
        }
      }
      return new Placement(left, top, width, height, fillIndex);
    }

    private static int intAttribute(NamedNodeMap attributes, String name) {
      return Integer.parseInt(attributes.getNamedItem(name).getNodeValue());
    }
  }

  private GifFirstFrame() {}

  /** Logical screen width and height from the GIF header (bytes 6-9, little-endian). */
  static int[] screenSize(byte[] bytes) {
    if (bytes.length < 10) {
      throw new ImageRejectedException(ImageRejectedException.Reason.TRUNCATED,
          "the GIF ends inside its header (%d bytes); send the complete file".formatted(bytes.length));
    }
    return new int[] {(bytes[6] & 0xff) | (bytes[7] & 0xff) << 8, (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8};
  }

  /** The canvas size PIL gives the first frame: the screen, grown to hold the frame. */
  static int[] canvasSize(int[] screen, Placement p) {
    return new int[] {Math.max(screen[0], p.left() + p.width()), Math.max(screen[1], p.top() + p.height())};
  }

  /** {@code frame} (already RGB) placed on a canvas of {@code canvas} size filled with the fill index's colour. */
  static RgbImage place(RgbImage frame, BufferedImage decoded, Placement p, int[] canvas) {
    if (canvas[0] == frame.width() && canvas[1] == frame.height()) {
      return frame;
    }
    int[] fill = {0, 0, 0};
    if (decoded.getColorModel() instanceof IndexColorModel palette && p.fillIndex() < palette.getMapSize()) {
      fill = new int[] {palette.getRed(p.fillIndex()), palette.getGreen(p.fillIndex()), palette.getBlue(p.fillIndex())};
    }
    RgbImage out = RgbImage.filled(canvas[0], canvas[1], fill);
    for (int y = 0; y < frame.height(); y++) {
      System.arraycopy(frame.rgb(), y * frame.width() * 3, out.rgb(), ((p.top() + y) * canvas[0] + p.left()) * 3,
          frame.width() * 3);
    }
    return out;
  }
}
