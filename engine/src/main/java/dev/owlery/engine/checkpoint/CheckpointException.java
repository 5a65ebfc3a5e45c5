package dev.owlery.engine.checkpoint;

import java.nio.file.Path;

/** A checkpoint file that cannot be used, with the file and (where known) the tensor named. */
public final class CheckpointException extends IllegalArgumentException {

  private final transient Path file;
  private final String tensorName;

  public CheckpointException(Path file, String tensorName, String problem) {
    this(file, tensorName, problem, null);
  }

  /** As above, keeping the I/O or parse error that revealed the problem. */
  public CheckpointException(Path file, String tensorName, String problem, Throwable cause) {
    super(tensorName == null
        ? "%s: %s".formatted(file, problem)
        : "%s: tensor '%s': %s".formatted(file, tensorName, problem), cause);
    this.file = file;
    this.tensorName = tensorName;
  }

  public Path file() {
    return file;
  }

  /** The tensor the problem is about, or null when it concerns the whole file. */
  public String tensorName() {
    return tensorName;
  }
}
