package dev.owlery.engine.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * A sharded checkpoint's index ({@code model.safetensors.index.json} or
 * {@code pytorch_model.bin.index.json}): {@code weight_map} from tensor name to shard file name,
 * resolved against the index's directory.
 */
record ShardIndex(Path file, Map<String, Path> weightMap) {

  private static final ObjectMapper JSON = new ObjectMapper();

  ShardIndex {
    weightMap = Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
  }

  /** Reads and checks an index file; every shard it names must exist inside its directory. */
  static ShardIndex read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (JacksonException e) {
      throw new CheckpointException(file, null, "malformed index JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read the index: " + e, e);
    }
    JsonNode map = root == null ? null : root.get("weight_map");
    if (map == null || !map.isObject()) {
      throw new CheckpointException(file, null, "the index has no \"weight_map\" object");
    }
    Path dir = file.toAbsolutePath().getParent();
    Map<String, Path> weightMap = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      JsonNode shard = e.getValue();
      if (!shard.isTextual()) {
        throw new CheckpointException(file, e.getKey(), "weight_map value %s is not a file name".formatted(shard));
      }
      Path shardFile;
      try {
        shardFile = dir.resolve(shard.asText()).normalize();
      } catch (InvalidPathException ex) {
        throw new CheckpointException(file, e.getKey(), "weight_map names an invalid path: " + ex.getMessage(), ex);
      }
      if (!dir.normalize().equals(shardFile.getParent())) {
        throw new CheckpointException(file, e.getKey(),
            "weight_map names '%s', which is not a file in the index's directory".formatted(shard.asText()));
      }
      if (!Files.isRegularFile(shardFile)) {
        throw new CheckpointException(file, e.getKey(),
            "weight_map maps it to '%s', which does not exist".formatted(shard.asText()));
      }
      weightMap.put(e.getKey(), shardFile);
    }
    if (weightMap.isEmpty()) {
      throw new CheckpointException(file, null, "the index's weight_map is empty");
    }
    return new ShardIndex(file, weightMap);
  }

  /** The distinct shard files, in first-mention order. */
  List<Path> files() {
    return List.copyOf(new LinkedHashSet<>(weightMap.values()));
  }
}
