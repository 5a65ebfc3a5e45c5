package dev.owlery.deploy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;

/** The repository's files as the deploy tests read them: YAML documents as trees, text as lines. */
final class DeployFiles {

  static final ObjectMapper YAML = YAMLMapper.builder().build();
  static final ObjectMapper JSON = JsonMapper.builder().build();

  private DeployFiles() {}

  /** The repository root (tests run in their module's folder, one below it). */
  static Path root() {
    return Path.of("").toAbsolutePath().getParent();
  }

  static Path deploy(String relative) {
    return root().resolve("deploy").resolve(relative);
  }

  /** Every non-empty document of a (multi-document) YAML file. */
  static List<JsonNode> yamlDocuments(Path file) {
    try {
      return YAML.readerFor(JsonNode.class).readValues(Files.readString(file)).readAll().stream()
          .map(JsonNode.class::cast)
          .filter(document -> !document.isNull() && !document.isMissingNode())
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The single document of a YAML file. */
  static JsonNode yaml(Path file) {
    List<JsonNode> documents = yamlDocuments(file);
    if (documents.size() != 1) {
      throw new IllegalArgumentException(file + " holds " + documents.size() + " YAML documents, not 1");
    }
    return documents.getFirst();
  }

  static JsonNode json(Path file) {
    return JSON.readTree(file.toFile());
  }

  static String text(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
