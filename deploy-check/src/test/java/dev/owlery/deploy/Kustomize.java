package dev.owlery.deploy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Renders a kustomization as {@code kustomize build} would, for the features deploy/kubernetes
 * uses: {@code resources} (files and kustomization folders), a {@code configMapGenerator} from
 * files without a name hash, and {@code patches} in JSON 6902 form aimed by kind and name. A
 * kustomization using anything else fails, so that what is checked is what would be applied.
 */
final class Kustomize {

  private static final Set<String> SUPPORTED = Set.of("apiVersion", "kind", "resources", "configMapGenerator", "patches");

  private Kustomize() {}

  /** The objects {@code kustomize build folder} prints, in order. */
  static List<ObjectNode> build(Path folder) {
    Path file = folder.resolve("kustomization.yaml");
    JsonNode kustomization = DeployFiles.yaml(file);
    for (String key : kustomization.propertyNames()) {
      if (!SUPPORTED.contains(key)) {
        throw new IllegalArgumentException(file + " uses '" + key + "', which the test's renderer does not apply; supported: " + SUPPORTED);
      }
    }
    List<ObjectNode> objects = new ArrayList<>();
    for (JsonNode resource : kustomization.path("resources")) {
      Path path = folder.resolve(resource.asString()).normalize();
      if (Files.isDirectory(path)) {
        objects.addAll(build(path));
      } else {
        DeployFiles.yamlDocuments(path).forEach(document -> objects.add((ObjectNode) document));
      }
    }
    for (JsonNode generator : kustomization.path("configMapGenerator")) {
      objects.add(configMap(folder, generator, file));
    }
    for (JsonNode patch : kustomization.path("patches")) {
      String kind = patch.path("target").path("kind").asString();
      String name = patch.path("target").path("name").asString();
      List<ObjectNode> targets = objects.stream()
          .filter(object -> object.path("kind").asString().equals(kind) && name(object).equals(name))
          .toList();
      if (targets.size() != 1) {
        throw new IllegalArgumentException(file + ": a patch targets " + kind + "/" + name + ", which matches " + targets.size() + " objects");
      }
      JsonPatch.apply(targets.getFirst(), DeployFiles.YAML.readTree(patch.path("patch").asString()), file.toString());
    }
    return objects;
  }

  static String name(JsonNode object) {
    return object.path("metadata").path("name").asString();
  }

  private static ObjectNode configMap(Path folder, JsonNode generator, Path file) {
    if (!generator.path("options").path("disableNameSuffixHash").asBoolean(false)) {
      throw new IllegalArgumentException(file + ": configMapGenerator " + generator.path("name")
          + " needs options.disableNameSuffixHash: true (the test's renderer does not rewrite hashed names)");
    }
    ObjectNode configMap = DeployFiles.JSON.createObjectNode();
    configMap.put("apiVersion", "v1").put("kind", "ConfigMap");
    ObjectNode metadata = configMap.putObject("metadata");
    metadata.put("name", generator.required("name").asString());
    if (generator.path("options").has("labels")) {
      metadata.set("labels", generator.path("options").path("labels").deepCopy());
    }
    ObjectNode data = configMap.putObject("data");
    for (JsonNode source : generator.path("files")) {
      Path path = folder.resolve(source.asString());
      data.put(path.getFileName().toString(), DeployFiles.text(path));
    }
    return configMap;
  }
}
