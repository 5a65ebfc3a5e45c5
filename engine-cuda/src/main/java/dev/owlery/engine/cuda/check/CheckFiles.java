package dev.owlery.engine.cuda.check;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** What the GPU checks write: their result files, and numbers as JSON. */
final class CheckFiles {

  private CheckFiles() {}

  static void write(Path file, List<String> lines) {
    try {
      Files.write(file, lines);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  /** A JSON number; NaN (a kernel that produced NaN) becomes null. */
  static String number(double value) {
    return Double.isFinite(value) ? String.format(Locale.ROOT, "%.6g", value) : "null";
  }
}
