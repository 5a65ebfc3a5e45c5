package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A checkpoint made of one or more safetensors files. */
public final class SafetensorsCheckpoint implements Checkpoint {

  private final Path location;
  private final List<SafetensorsFile> files;
  private final Map<String, Tensor> tensors;

  private SafetensorsCheckpoint(Path location, List<SafetensorsFile> files, Map<String, Tensor> tensors) {
    this.location = location;
    this.files = files;
    this.tensors = tensors;
  }

  /** Opens a single safetensors file. */
  public static SafetensorsCheckpoint openFile(Path file) {
    SafetensorsFile f = SafetensorsFile.open(file);
    return new SafetensorsCheckpoint(file, List.of(f), Collections.unmodifiableMap(new LinkedHashMap<>(f.tensors())));
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
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new CheckpointException(location, name, "the model needs this tensor but the checkpoint has none of that name");
    }
    return t;
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new CheckpointException(location, name,
          "shape %s does not match the config, which needs %s"
              .formatted(Arrays.toString(t.shape()), Arrays.toString(shape)));
    }
    return t;
  }

  @Override
  public void close() {
    for (SafetensorsFile f : files) {
      f.close();
    }
  }
}
