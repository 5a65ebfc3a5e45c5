package dev.owlery.cli.demo;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import javax.imageio.ImageIO;

/** Draws the demo's picture (an owl on a branch under the moon) and encodes it as PNG bytes. */
public final class DemoPicture {

  private DemoPicture() {}

  /** PNG bytes of a {@code width x height} picture, the same every time. */
  public static byte[] png(int width, int height) {
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setPaint(new GradientPaint(0, 0, new Color(20, 24, 70), 0, height, new Color(70, 60, 140)));
      g.fillRect(0, 0, width, height);
      g.setColor(new Color(250, 240, 190));
      g.fillOval(width * 70 / 100, height * 8 / 100, width / 6, width / 6);
      g.setColor(new Color(90, 60, 30));
      g.setStroke(new BasicStroke(Math.max(2f, height / 25f)));
      g.drawLine(0, height * 80 / 100, width, height * 72 / 100);
      int cx = width / 2;
      int cy = height * 55 / 100;
      int w = width / 4;
      int h = height * 35 / 100;
      g.setColor(new Color(140, 100, 60));
      g.fillOval(cx - w / 2, cy - h / 2, w, h);
      g.setColor(new Color(230, 220, 200));
      g.fillOval(cx - w / 3, cy - h / 3, w / 3, w / 3);
      g.fillOval(cx, cy - h / 3, w / 3, w / 3);
      g.setColor(Color.BLACK);
      g.fillOval(cx - w / 4, cy - h / 4, w / 8, w / 8);
      g.fillOval(cx + w / 12, cy - h / 4, w / 8, w / 8);
      g.setColor(new Color(240, 170, 40));
      g.fillPolygon(new int[] {cx - w / 16, cx + w / 16, cx}, new int[] {cy - h / 12, cy - h / 12, cy + h / 12}, 3);
    } finally {
      g.dispose();
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ImageIO.write(image, "png", out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }
}
