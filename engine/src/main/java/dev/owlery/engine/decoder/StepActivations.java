package dev.owlery.engine.decoder;

/**
 * One rank's activations for a step of up to {@code capacity} tokens, allocated once when the slice
 * is built and reused by every step and layer (no allocation per token). Rows are row-major.
 */
final class StepActivations {

  final int capacity;
  /** The residual stream x, [capacity, hiddenSize]. */
  final float[] residual;
  /** RMSNorm output fed to attention or MLP, [capacity, hiddenSize]. */
  final float[] normed;
  /** This rank's queries, [capacity, numLocalHeads * headDim]. */
  final float[] query;
  /** This rank's keys and values of the new tokens, [capacity, numLocalKvHeads * headDim]. */
  final float[] key;
  final float[] value;
  /** Attention output before o_proj, [capacity, numLocalHeads * headDim]. */
  final float[] attnOutput;
  /** Output of o_proj or down_proj after the all-reduce, [capacity, hiddenSize]. */
  final float[] projected;
  /** This rank's gate and up projections, [capacity, localIntermediateSize]. */
  final float[] gate;
  final float[] up;

  StepActivations(int capacity, int hiddenSize, int localQSize, int localKvSize, int localIntermediateSize) {
    this.capacity = capacity;
    this.residual = new float[Math.multiplyExact(capacity, hiddenSize)];
    this.normed = new float[residual.length];
    this.query = new float[Math.multiplyExact(capacity, localQSize)];
    this.key = new float[Math.multiplyExact(capacity, localKvSize)];
    this.value = new float[key.length];
    this.attnOutput = new float[query.length];
    this.projected = new float[residual.length];
    this.gate = new float[Math.multiplyExact(capacity, localIntermediateSize)];
    this.up = new float[gate.length];
  }
}
