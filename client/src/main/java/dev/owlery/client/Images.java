package dev.owlery.client;

import com.google.protobuf.ByteString;
import dev.owlery.proto.v1.Image;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds request images from encoded files (PNG, JPEG, ...); the server decodes them. */
public final class Images {

  private Images() {}

  /** The image with these encoded bytes (copied). */
  public static Image fromBytes(byte[] encoded) {
    return Image.newBuilder().setData(ByteString.copyFrom(encoded)).build();
  }

  /**
   * The image stored in {@code file}.
   *
   * @throws UncheckedIOException naming the file when it cannot be read
   */
  public static Image fromPath(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      return Image.newBuilder().setData(ByteString.readFrom(in)).build();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read image " + file.toAbsolutePath() + ": " + e, e);
    }
  }
}
