package dev.owlery.cli;

import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;

/** Kernels whose calls go to the selected set: the benchmarks switch sets under one loaded model. */
final class SwitchedKernels extends ForwardingKernels {

  private Kernels selected;

  SwitchedKernels(Kernels first) {
    this.selected = first;
  }

  /** The set the next calls go to. */
  void select(Kernels kernels) {
    selected = kernels;
  }

  @Override
  protected Kernels delegate() {
    return selected;
  }
}
