package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.IndexRange;
import dev.owlery.engine.decoder.TensorParallelRank;
import java.util.List;

/**
 * One decoder layer with the Modality-Adaptive Module (spec §4) on a device, one tensor-parallel
 * rank's weights: the CPU's {@code LlamaDecoderLayer}, {@code LlamaAttention} and {@code LlamaMlp}
 * as one sequence of kernel launches, the two all-reduces (after o_proj and after down_proj) the
 * only trips to the host. Weights are loaded as the CPU layers load them (the same names, the same
 * {@link TensorParallelRank} splits, {@link Checkpoint#weight} for the served format).
 */
final class DeviceDecoderLayer {

  private final Device device;
  private final HostAllReduce allReduce;
  private final DeviceRopeTables ropeTables;
  private final int layerIndex;
  private final int hiddenSize;
  private final int numModalities;
  private final float eps;
  private final int numHeads; // this rank's
  private final int numKvHeads; // this rank's
  private final int headDim;
  private final float scale;
  private final DevicePointer inputLayernorm; // float32 [numModalities, hiddenSize]
  private final DeviceMatrix qProj;
  private final List<DeviceMatrix> kProj; // one per modality
  private final List<DeviceMatrix> vProj;
  private final DeviceMatrix oProj;
  private final DevicePointer postAttentionLayernorm;
  private final DeviceMatrix gateProj;
  private final DeviceMatrix upProj;
  private final DeviceMatrix downProj;

  DeviceDecoderLayer(Device device, HostAllReduce allReduce, DeviceRopeTables ropeTables, Checkpoint checkpoint,
      int layerIndex, LlamaConfig config, TensorParallelRank tp) {
    String prefix = "model.layers." + layerIndex;
    this.device = device;
    this.allReduce = allReduce;
    this.ropeTables = ropeTables;
    this.layerIndex = layerIndex;
    this.hiddenSize = config.hiddenSize();
    this.numModalities = config.numModalities();
    this.eps = config.rmsNormEps();
    this.headDim = config.headDim();
    IndexRange heads = tp.heads(config.numHeads());
    IndexRange kvHeads = tp.kvHeads(config.numHeads(), config.numKvHeads());
    this.numHeads = heads.size();
    this.numKvHeads = kvHeads.size();
    this.scale = (float) (1 / Math.sqrt(headDim)); // as LlamaAttention's AttentionShape
    IndexRange qFeatures = heads.times(headDim);
    IndexRange kvFeatures = kvHeads.times(headDim);
    IndexRange intermediate = tp.evenShare("intermediate_size", config.intermediateSize());
    this.inputLayernorm = DeviceWeights.norms(device, checkpoint, prefix + ".input_layernorm", numModalities, hiddenSize);
    this.qProj = DeviceWeights.rows(device, checkpoint, prefix + ".self_attn.q_proj.weight", config.qSize(), hiddenSize,
        qFeatures);
    this.kProj = DeviceWeights.multiway(prefix + ".self_attn.k_proj", numModalities,
        name -> DeviceWeights.rows(device, checkpoint, name, config.kvSize(), hiddenSize, kvFeatures));
    this.vProj = DeviceWeights.multiway(prefix + ".self_attn.v_proj", numModalities,
        name -> DeviceWeights.rows(device, checkpoint, name, config.kvSize(), hiddenSize, kvFeatures));
    this.oProj = DeviceWeights.columns(device, checkpoint, prefix + ".self_attn.o_proj.weight", hiddenSize,
        config.qSize(), qFeatures);
    this.postAttentionLayernorm = DeviceWeights.norms(device, checkpoint, prefix + ".post_attention_layernorm",
        numModalities, hiddenSize);
    this.gateProj = DeviceWeights.rows(device, checkpoint, prefix + ".mlp.gate_proj.weight",
        config.intermediateSize(), hiddenSize, intermediate);
    this.upProj = DeviceWeights.rows(device, checkpoint, prefix + ".mlp.up_proj.weight", config.intermediateSize(),
        hiddenSize, intermediate);
    this.downProj = DeviceWeights.columns(device, checkpoint, prefix + ".mlp.down_proj.weight", hiddenSize,
        config.intermediateSize(), intermediate);
  }

  /**
   * Transforms {@code a.residual} in place for the step's {@code numTokens} rows, whose modalities,
   * sequences, positions and block tables are already on the device.
   */
  void forward(DeviceActivations a, StepRows rows, DeviceKvPool pool) {
    int n = rows.numTokens();
    int qWidth = numHeads * headDim;
    int kvWidth = numKvHeads * headDim;
    int inter = gateProj.rows();
    // a = RMSNorm_{m_t}^{in}(x_t)
    device.launch(PtxKernels.RMS_NORM, n, 1, a.normed, a.residual, inputLayernorm, a.modality, hiddenSize,
        numModalities, eps);
    // q = Wq a; k = Wk_{m} a; v = Wv_{m} a, per run of rows of one modality   [n, numLocal(Kv)Heads * headDim]
    qProj.multiply(device, a.normed, a.query, n, a.gemmScratch);
    for (int t = 0; t < n; ) {
      int end = rows.modalityRunEnd(t, numModalities);
      int m = numModalities == 1 ? 0 : rows.modality(t).index();
      DevicePointer in = a.normed.plusWords((long) t * hiddenSize);
      kProj.get(m).multiply(device, in, a.key.plusWords((long) t * kvWidth), end - t, a.gemmScratch);
      vProj.get(m).multiply(device, in, a.value.plusWords((long) t * kvWidth), end - t, a.gemmScratch);
      t = end;
    }
    // RoPE on q and k at each row's position, then k (post-RoPE) and v into the F16 pool at each row's slot
    rope(a.query, a.rowPos, n, numHeads);
    rope(a.key, a.rowPos, n, numKvHeads);
    device.launch(PtxKernels.KV_APPEND, strideGrid(PtxKernels.KV_APPEND, (long) n * kvWidth), 1,
        pool.keys(layerIndex), pool.values(layerIndex), a.key, a.value, rows.blockTables(), a.rowSeq, a.rowPos, n,
        numKvHeads, headDim, pool.blockSize(), rows.maxBlocksPerSeq());
    // Attn_causal(q, k, v): each row over its own sequence's positions [0, position]
    device.launch(PtxKernels.PAGED_ATTENTION, numHeads, n, a.attnOutput, a.query, pool.keys(layerIndex),
        pool.values(layerIndex), rows.blockTables(), a.rowSeq, a.rowPos, numHeads, numKvHeads, headDim,
        pool.blockSize(), rows.maxBlocksPerSeq(), scale);
    // o_t = Wo Attn  (all-reduce #1)
    oProj.multiply(device, a.attnOutput, a.projected, n, a.gemmScratch);
    allReduce.sum(a.projected, n * hiddenSize);
    // h_t = x_t + o_t; b = RMSNorm_{m_t}^{post}(h_t)   (one launch)
    device.launch(PtxKernels.ADD_RMS_NORM, n, 1, a.normed, a.residual, a.projected, postAttentionLayernorm,
        a.modality, hiddenSize, numModalities, eps);
    // x'_t = h_t + Wdown(SiLU(Wgate b) * Wup b)  (all-reduce #2)
    gateProj.multiply(device, a.normed, a.gate, n, a.gemmScratch);
    upProj.multiply(device, a.normed, a.up, n, a.gemmScratch);
    device.launch(PtxKernels.SILU_MUL, strideGrid(PtxKernels.SILU_MUL, (long) n * inter), 1, a.gate, a.gate, a.up,
        n * inter);
    downProj.multiply(device, a.gate, a.projected, n, a.gemmScratch);
    allReduce.sum(a.projected, n * hiddenSize);
    device.launch(PtxKernels.RESIDUAL_ADD, strideGrid(PtxKernels.RESIDUAL_ADD, (long) n * hiddenSize), 1, a.residual,
        a.projected, n * hiddenSize);
  }

  private void rope(DevicePointer x, DevicePointer positions, int n, int heads) {
    device.launch(PtxKernels.ROPE, strideGrid(PtxKernels.ROPE, (long) n * heads * (headDim / 2)), 1, x, positions,
        ropeTables.cos(), ropeTables.sin(), n, heads, headDim, ropeTables.maxPositions());
  }

  /** Blocks for a grid-stride kernel over {@code total} elements: one element per thread, at most 4096 blocks. */
  static int strideGrid(PtxKernel kernel, long total) {
    return (int) Math.max(1, Math.min(4096, (total + kernel.blockSize() - 1) / kernel.blockSize()));
  }
}
