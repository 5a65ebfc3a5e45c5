package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.parallel.Collective;

/**
 * The SwiGLU MLP {@code down(silu(gate(b)) * up(b))} (spec §4), shared by both modalities: gate/up
 * column-parallel, down row-parallel (one all-reduce).
 */
public final class LlamaMlp {

  private final Kernels kernels;
  private final ColumnParallelLinear gateProj;
  private final ColumnParallelLinear upProj;
  private final RowParallelLinear downProj;

  /** Loads {@code <prefix>.{gate,up,down}_proj.weight}; {@code prefix} is {@code model.layers.i.mlp}. */
  public LlamaMlp(Checkpoint checkpoint, String prefix, LlamaConfig config, TensorParallelRank tp,
      Collective collective, Kernels kernels) {
    this.kernels = kernels;
    int hidden = config.hiddenSize();
    int inter = config.intermediateSize();
    IndexRange local = tp.evenShare("intermediate_size", inter);
    this.gateProj = ColumnParallelLinear.load(checkpoint, prefix + ".gate_proj.weight", inter, hidden, local);
    this.upProj = ColumnParallelLinear.load(checkpoint, prefix + ".up_proj.weight", inter, hidden, local);
    this.downProj = RowParallelLinear.load(checkpoint, prefix + ".down_proj.weight", hidden, inter, local, collective);
  }

  public int localIntermediateSize() {
    return gateProj.outFeatures();
  }

  /** MLP of {@code a.normed} into {@code a.projected} (all-reduced), for {@code numTokens} rows. */
  void forward(StepActivations a, int numTokens) {
    int width = gateProj.outFeatures();
    gateProj.forward(kernels, a.normed, 0, a.gate, 0, numTokens);
    upProj.forward(kernels, a.normed, 0, a.up, 0, numTokens);
    kernels.siluMul(a.gate, 0, a.up, 0, a.gate, 0, numTokens * width);
    // all-reduce #2 of the layer
    downProj.forward(kernels, a.gate, 0, a.projected, 0, numTokens);
  }
}
