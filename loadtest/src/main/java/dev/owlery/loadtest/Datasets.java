package dev.owlery.loadtest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.client.Images;
import dev.owlery.proto.v1.Image;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads dataset files into requests. A bad entry fails the whole file with {@code FILE:LINE: what
 * is wrong}; nothing is skipped silently.
 *
 * <ul>
 *   <li>JSONL: one object per line, {@code {"prompt": TEXT} or {"prompt_ids": [1, 2]}}, optional
 *       {@code "images": [PATH, ...]} (relative to the file's folder), {@code "max_tokens": N} and
 *       {@code "expected_output": TEXT}; blank lines are ignored.
 *   <li>ShareGPT: a JSON array of {@code {"conversations": [{"from": "human", "value": ...},
 *       {"from": "gpt", "value": ...}, ...]}}; the first turn is the prompt and the second the
 *       expected output. Conversations with fewer than two turns are left out, as vLLM does.
 * </ul>
 */
public final class Datasets {

  private static final ObjectMapper JSON = new ObjectMapper();

  private Datasets() {}

  /** The entries of a JSONL file. */
  public static List<DatasetEntry> readJsonl(Path file) {
    List<String> lines = readLines(file);
    List<DatasetEntry> entries = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (line.isBlank()) {
        continue;
      }
      String where = file + ":" + (i + 1);
      JsonNode node;
      try {
        node = JSON.readTree(line);
      } catch (JsonProcessingException e) {
        throw new IllegalArgumentException(where + ": not a JSON object: " + e.getOriginalMessage());
      }
      entries.add(entry(node, where, file.toAbsolutePath().getParent()));
    }
    if (entries.isEmpty()) {
      throw new IllegalArgumentException(file + ": the dataset holds no request");
    }
    return entries;
  }

  /** The entries of a ShareGPT-style JSON file. */
  public static List<DatasetEntry> readShareGpt(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("%s:%d: not JSON: %s".formatted(file, e.getLocation().getLineNr(),
          e.getOriginalMessage()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read dataset " + file + ": " + e.getMessage(), e);
    }
    if (!root.isArray()) {
      throw new IllegalArgumentException(file + ": a ShareGPT file is a JSON array of {\"conversations\": [...]}");
    }
    List<DatasetEntry> entries = new ArrayList<>();
    for (int i = 0; i < root.size(); i++) {
      JsonNode turns = root.get(i).get("conversations");
      String where = file + ": conversation " + i;
      if (turns == null || !turns.isArray()) {
        throw new IllegalArgumentException(where + ": \"conversations\" must be an array of turns");
      }
      if (turns.size() < 2) {
        continue;
      }
      entries.add(new DatasetEntry(text(turns.get(0), "value", where + " turn 0"), null, List.of(), 0,
          text(turns.get(1), "value", where + " turn 1")));
    }
    if (entries.isEmpty()) {
      throw new IllegalArgumentException(file + ": no conversation has two turns");
    }
    return entries;
  }

  private static DatasetEntry entry(JsonNode node, String where, Path folder) {
    if (!node.isObject()) {
      throw new IllegalArgumentException(where + ": each line must be a JSON object");
    }
    boolean hasText = node.has("prompt");
    boolean hasIds = node.has("prompt_ids");
    if (hasText == hasIds) {
      throw new IllegalArgumentException(where + ": give exactly one of \"prompt\" (text) and \"prompt_ids\" (token ids)");
    }
    int[] ids = null;
    if (hasIds) {
      JsonNode array = node.get("prompt_ids");
      if (!array.isArray() || array.isEmpty()) {
        throw new IllegalArgumentException(where + ": \"prompt_ids\" must be a non-empty array of integers");
      }
      ids = new int[array.size()];
      for (int i = 0; i < ids.length; i++) {
        if (!array.get(i).isInt()) {
          throw new IllegalArgumentException(where + ": \"prompt_ids\" must hold integers, got " + array.get(i));
        }
        ids[i] = array.get(i).asInt();
      }
    }
    List<Image> images = new ArrayList<>();
    JsonNode paths = node.path("images");
    if (!paths.isMissingNode()) {
      if (!paths.isArray()) {
        throw new IllegalArgumentException(where + ": \"images\" must be an array of file paths");
      }
      for (JsonNode path : paths) {
        Path image = folder.resolve(path.asText());
        if (!path.isTextual() || !Files.isReadable(image)) {
          throw new IllegalArgumentException(where + ": cannot read image " + image);
        }
        images.add(Images.fromPath(image));
      }
    }
    int maxTokens = 0;
    if (node.has("max_tokens")) {
      JsonNode value = node.get("max_tokens");
      if (!value.isInt() || value.asInt() < 1) {
        throw new IllegalArgumentException(where + ": \"max_tokens\" must be an integer >= 1, got " + value);
      }
      maxTokens = value.asInt();
    }
    String expected = node.has("expected_output") ? text(node, "expected_output", where) : null;
    return new DatasetEntry(hasText ? text(node, "prompt", where) : null, ids, images, maxTokens, expected);
  }

  private static String text(JsonNode node, String field, String where) {
    JsonNode value = node.get(field);
    if (value == null || !value.isTextual()) {
      throw new IllegalArgumentException("%s: \"%s\" must be a string".formatted(where, field));
    }
    return value.asText();
  }

  private static List<String> readLines(Path file) {
    try {
      return Files.readAllLines(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read dataset " + file + ": " + e.getMessage(), e);
    }
  }
}
