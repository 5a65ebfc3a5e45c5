package dev.owlery.engine.config;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;

/** Reads one JSON config file of a model directory, every error prefixed with the file's path. */
public final class JsonConfigFile {

  private static final ObjectMapper JSON = new ObjectMapper();

  private JsonConfigFile() {}

  /**
   * Parses {@code file} with {@code parse}; malformed JSON and the parser's
   * IllegalArgumentExceptions come back as IllegalArgumentExceptions naming the file.
   */
  public static <T> T read(Path file, Function<JsonNode, T> parse) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (JacksonException e) {
      throw new IllegalArgumentException("%s: malformed JSON: %s".formatted(file, e.getOriginalMessage()), e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
    try {
      return parse.apply(root);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }
}
