package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint whose tensors live in read-only mappings of one or more files (plus any copies made
 * for strided tensors), all owned by one arena that {@link #close()} releases.
 */
abstract sealed class MappedCheckpoint implements Checkpoint permits SafetensorsCheckpoint, TorchCheckpoint {

  /** Parses one mapped file into its tensors; copies, if any, go into {@code arena}. */
  @FunctionalInterface
  interface FileReader {
    Map<String, Tensor> read(Path path, MemorySegment file, Arena arena);
  }

  /** The opened state: the arena owning every mapping, each tensor, and the file it came from. */
  record Contents(Arena arena, Map<String, Tensor> tensors, Map<String, Path> sources) {}

  private final Path location;
  private final Arena arena;
  private final Map<String, Tensor> tensors;
  private final Map<String, Path> sources;
  private boolean closed;

  MappedCheckpoint(Path location, Contents contents) {
    this.location = location;
    this.arena = contents.arena();
    this.tensors = Collections.unmodifiableMap(contents.tensors());
    this.sources = contents.sources();
  }

  /**
   * Maps each of {@code files} once and collects their tensors: with an index, exactly the names of
   * its weight_map, each from the file it names; without, every tensor of every file, a name
   * appearing in two files being an error.
   *
   * @param index the shard index, or null when there is none
   */
  static Contents load(List<Path> files, ShardIndex index, FileReader reader) {
    Arena arena = Arena.ofShared();
    try {
      Map<Path, Map<String, Tensor>> perFile = new LinkedHashMap<>();
      for (Path file : files) {
        perFile.put(file, reader.read(file, map(file, arena), arena));
      }
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      Map<String, Path> sources = new LinkedHashMap<>();
      if (index != null) {
        for (Map.Entry<String, Path> e : index.weightMap().entrySet()) {
          Tensor t = perFile.get(e.getValue()).get(e.getKey());
          if (t == null) {
            throw new CheckpointException(e.getValue(), e.getKey(),
                "the index %s maps it to this file, which has no tensor of that name".formatted(index.file()));
          }
          tensors.put(e.getKey(), t);
          sources.put(e.getKey(), e.getValue());
        }
      } else {
        for (Map.Entry<Path, Map<String, Tensor>> file : perFile.entrySet()) {
          for (Tensor t : file.getValue().values()) {
            Path earlier = sources.putIfAbsent(t.name(), file.getKey());
            if (earlier != null) {
              throw new CheckpointException(file.getKey(), t.name(), "also in %s".formatted(earlier));
            }
            tensors.put(t.name(), t);
          }
        }
      }
      return new Contents(arena, tensors, sources);
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  private static MemorySegment map(Path file, Arena arena) {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot map the file: " + e, e);
    }
  }

  @Override
  public Path location() {
    return location;
  }

  @Override
  public Set<String> names() {
    return tensors.keySet();
  }

  @Override
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  @Override
  public Tensor tensor(String name) {
    if (closed) {
      throw new IllegalStateException("checkpoint %s is closed".formatted(location));
    }
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new CheckpointException(location, name,
          "the model needs this tensor but the checkpoint (%d tensors) has none of that name".formatted(tensors.size()));
    }
    return t;
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new CheckpointException(sources.get(name), name,
          "shape %s does not match the config, which needs %s"
              .formatted(Arrays.toString(t.shape()), Arrays.toString(shape)));
    }
    return t;
  }

  /** The file the tensor {@code name} was read from (for messages). */
  public Path source(String name) {
    tensor(name);
    return sources.get(name);
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      arena.close();
    }
  }
}
