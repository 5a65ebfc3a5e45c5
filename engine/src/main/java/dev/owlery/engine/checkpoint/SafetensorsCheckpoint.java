package dev.owlery.engine.checkpoint;

import java.nio.file.Path;
import java.util.List;

/** A checkpoint made of one or more {@code .safetensors} files, each mapped once. */
public final class SafetensorsCheckpoint extends MappedCheckpoint {

  private SafetensorsCheckpoint(Path location, Contents contents) {
    super(location, contents);
  }

  /** Opens a single safetensors file. */
  public static SafetensorsCheckpoint openFile(Path file) {
    return new SafetensorsCheckpoint(file, load(List.of(file), null, SafetensorsFile::read));
  }

  /**
   * Opens a sharded set through its index ({@code model.safetensors.index.json}): the checkpoint
   * holds exactly the weight_map's names, each from the file it names.
   */
  public static SafetensorsCheckpoint openIndex(Path indexFile) {
    ShardIndex index = ShardIndex.read(indexFile);
    return new SafetensorsCheckpoint(indexFile, load(index.files(), index, SafetensorsFile::read));
  }

  /** Opens every tensor of {@code files} (shards without an index); a name in two files is an error. */
  public static SafetensorsCheckpoint openShards(Path location, List<Path> files) {
    return new SafetensorsCheckpoint(location, load(List.copyOf(files), null, SafetensorsFile::read));
  }
}
