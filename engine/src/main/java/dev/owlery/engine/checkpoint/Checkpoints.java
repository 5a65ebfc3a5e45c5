package dev.owlery.engine.checkpoint;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Opens the checkpoint of a model directory, whatever its file layout. Looked for in this order
 * (HuggingFace's own order, safetensors first), the first present wins:
 * <ol>
 *   <li>{@code model.safetensors}
 *   <li>{@code model.safetensors.index.json} (sharded safetensors)
 *   <li>{@code model-<i>-of-<n>.safetensors} without an index (all n shards must be there)
 *   <li>{@code pytorch_model.bin}
 *   <li>{@code pytorch_model.bin.index.json} (sharded {@code .bin})
 *   <li>{@code pytorch_model-<i>-of-<n>.bin} without an index (all n shards must be there)
 * </ol>
 */
public final class Checkpoints {

  static final String SAFETENSORS = "model.safetensors";
  static final String SAFETENSORS_INDEX = "model.safetensors.index.json";
  static final String TORCH = "pytorch_model.bin";
  static final String TORCH_INDEX = "pytorch_model.bin.index.json";
  private static final Pattern SAFETENSORS_SHARD = Pattern.compile("model-(\\d+)-of-(\\d+)\\.safetensors");
  private static final Pattern TORCH_SHARD = Pattern.compile("pytorch_model-(\\d+)-of-(\\d+)\\.bin");

  private Checkpoints() {}

  /**
   * Opens the checkpoint in {@code path}: a model directory (see the class comment for the order),
   * or one checkpoint file ({@code .safetensors}, {@code .bin}/{@code .pt}/{@code .pth}, or an
   * {@code .index.json}).
   *
   * @throws CheckpointException when nothing is found (listing what was looked for) or a file is bad
   */
  public static Checkpoint open(Path path) {
    if (Files.isRegularFile(path)) {
      return openFile(path);
    }
    if (!Files.isDirectory(path)) {
      throw new CheckpointException(path, null, "no such model directory or checkpoint file");
    }
    if (Files.isRegularFile(path.resolve(SAFETENSORS))) {
      return SafetensorsCheckpoint.openFile(path.resolve(SAFETENSORS));
    }
    if (Files.isRegularFile(path.resolve(SAFETENSORS_INDEX))) {
      return SafetensorsCheckpoint.openIndex(path.resolve(SAFETENSORS_INDEX));
    }
    List<Path> safetensorsShards = shards(path, SAFETENSORS_SHARD);
    if (!safetensorsShards.isEmpty()) {
      return SafetensorsCheckpoint.openShards(path, safetensorsShards);
    }
    if (Files.isRegularFile(path.resolve(TORCH))) {
      return TorchCheckpoint.openFile(path.resolve(TORCH));
    }
    if (Files.isRegularFile(path.resolve(TORCH_INDEX))) {
      return TorchCheckpoint.openIndex(path.resolve(TORCH_INDEX));
    }
    List<Path> torchShards = shards(path, TORCH_SHARD);
    if (!torchShards.isEmpty()) {
      return TorchCheckpoint.openShards(path, torchShards);
    }
    throw new CheckpointException(path, null,
        "no checkpoint found; looked for %s, %s, model-*-of-*.safetensors, %s, %s and pytorch_model-*-of-*.bin"
            .formatted(SAFETENSORS, SAFETENSORS_INDEX, TORCH, TORCH_INDEX));
  }

  private static Checkpoint openFile(Path file) {
    String name = file.getFileName().toString();
    if (name.endsWith(".safetensors")) {
      return SafetensorsCheckpoint.openFile(file);
    }
    if (name.endsWith(".safetensors.index.json")) {
      return SafetensorsCheckpoint.openIndex(file);
    }
    if (name.endsWith(".bin.index.json")) {
      return TorchCheckpoint.openIndex(file);
    }
    if (name.endsWith(".bin") || name.endsWith(".pt") || name.endsWith(".pth")) {
      return TorchCheckpoint.openFile(file);
    }
    throw new CheckpointException(file, null,
        "not a checkpoint file name (expected .safetensors, .bin, .pt, .pth or .index.json)");
  }

  /**
   * The shard files named like {@code pattern} (groups: index, count) in shard order, or none;
   * a set with a shard missing, or shards of different counts, is an error.
   */
  private static List<Path> shards(Path dir, Pattern pattern) {
    TreeMap<Integer, Path> byIndex = new TreeMap<>();
    int count = -1;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        Matcher m = pattern.matcher(file.getFileName().toString());
        if (!m.matches()) {
          continue;
        }
        int index = Integer.parseInt(m.group(1));
        int of = Integer.parseInt(m.group(2));
        if (count >= 0 && of != count) {
          throw new CheckpointException(file, null,
              "shard of %d files, but another shard in the directory says %d".formatted(of, count));
        }
        count = of;
        if (index < 1 || index > of || byIndex.put(index, file) != null) {
          throw new CheckpointException(file, null,
              "shard number %d is out of range 1..%d or appears twice".formatted(index, of));
        }
      }
    } catch (IOException e) {
      throw new CheckpointException(dir, null, "cannot list the directory: " + e, e);
    } catch (NumberFormatException e) {
      throw new CheckpointException(dir, null, "shard number too large: " + e.getMessage(), e);
    }
    if (!byIndex.isEmpty() && byIndex.size() != count) {
      List<Integer> missing = new ArrayList<>();
      for (int i = 1; i <= count && missing.size() < 10; i++) {
        if (!byIndex.containsKey(i)) {
          missing.add(i);
        }
      }
      throw new CheckpointException(dir, null, "sharded checkpoint of %d files is missing shard(s) %s (pattern %s)"
          .formatted(count, missing, pattern.pattern()));
    }
    return List.copyOf(byIndex.values());
  }
}
