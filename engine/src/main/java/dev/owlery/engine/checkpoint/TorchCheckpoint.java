package dev.owlery.engine.checkpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * A checkpoint made of one or more PyTorch {@code .bin} files ({@code torch.save} zip format, or
 * the legacy pickle format), read without Python: a restricted unpickler finds the tensors, whose
 * bytes are the file mappings themselves when contiguous.
 */
public final class TorchCheckpoint extends MappedCheckpoint {

  private TorchCheckpoint(Path location, Contents contents) {
    super(location, contents);
  }

  /** Opens a single {@code .bin} file. */
  public static TorchCheckpoint openFile(Path file) {
    return new TorchCheckpoint(file, load(List.of(file), null, TorchBinFile::read));
  }

  /**
   * Opens a sharded set through its index ({@code pytorch_model.bin.index.json}): the checkpoint
   * holds exactly the weight_map's names, each from the file it names.
   */
  public static TorchCheckpoint openIndex(Path indexFile) {
    ShardIndex index = ShardIndex.read(indexFile);
    return new TorchCheckpoint(indexFile, load(index.files(), index, TorchBinFile::read));
  }

  /** Opens every tensor of {@code files} (shards without an index); a name in two files is an error. */
  public static TorchCheckpoint openShards(Path location, List<Path> files) {
    return new TorchCheckpoint(location, load(List.copyOf(files), null, TorchBinFile::read));
  }
}
