package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.tensor.Tensor;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;

/** A checkpoint view hiding one tensor, as a real tied checkpoint without lm_head.weight would look. */
record WithoutTensor(Checkpoint delegate, String hidden) implements Checkpoint {

  @Override
  public Path location() {
    return delegate.location();
  }

  @Override
  public Set<String> names() {
    return delegate.names().stream().filter(n -> !n.equals(hidden)).collect(Collectors.toUnmodifiableSet());
  }

  @Override
  public boolean contains(String name) {
    return !name.equals(hidden) && delegate.contains(name);
  }

  @Override
  public Tensor tensor(String name) {
    if (name.equals(hidden)) {
      throw new IllegalArgumentException("no tensor " + name);
    }
    return delegate.tensor(name);
  }

  @Override
  public Tensor tensor(String name, long... shape) {
    tensor(name);
    return delegate.tensor(name, shape);
  }

  @Override
  public void close() {
    // the delegate is closed by its owner
  }
}
