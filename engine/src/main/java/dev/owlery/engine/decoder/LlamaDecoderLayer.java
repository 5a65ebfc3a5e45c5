package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.parallel.Collective;

/**
 * One decoder layer with the Modality-Adaptive Module (spec §4): per-modality input and
 * post-attention RMSNorms, attention, SwiGLU MLP, two residual adds, two all-reduces.
 */
public final class LlamaDecoderLayer {

  private final Kernels kernels;
  private final int hiddenSize;
  private final Multiway<RmsNorm> inputLayernorm;
  private final LlamaAttention selfAttn;
  private final Multiway<RmsNorm> postAttentionLayernorm;
  private final LlamaMlp mlp;

  /** Loads {@code model.layers.<layerIndex>.*} for this rank. */
  public LlamaDecoderLayer(Checkpoint checkpoint, int layerIndex, LlamaConfig config, TensorParallelRank tp,
      Collective collective, RotaryEmbedding rotaryEmb, Kernels kernels) {
    String prefix = "model.layers." + layerIndex;
    this.kernels = kernels;
    this.hiddenSize = config.hiddenSize();
    int modalities = config.numModalities();
    float eps = config.rmsNormEps();
    this.inputLayernorm = Multiway.load(prefix + ".input_layernorm", modalities,
        name -> RmsNorm.load(checkpoint, name, hiddenSize, eps));
    this.selfAttn = new LlamaAttention(checkpoint, prefix + ".self_attn", layerIndex, config, tp, collective,
        rotaryEmb, kernels);
    this.postAttentionLayernorm = Multiway.load(prefix + ".post_attention_layernorm", modalities,
        name -> RmsNorm.load(checkpoint, name, hiddenSize, eps));
    this.mlp = new LlamaMlp(checkpoint, prefix + ".mlp", config, tp, collective, kernels);
  }

  public int localIntermediateSize() {
    return mlp.localIntermediateSize();
  }

  /** Transforms {@code a.residual} in place for the rows of {@code layout} (one or more sequences). */
  void forward(StepActivations a, RowLayout layout) {
    int numTokens = layout.numTokens();
    Modality[] modalities = layout.modalities;
    // a = RMSNorm_{m_t}^{in}(x_t)
    kernels.forEachRow(numTokens,
        t -> inputLayernorm.get(modalities[t]).forward(kernels, a.residual, t * hiddenSize, a.normed, t * hiddenSize));
    // o_t = Wo Attn_causal(q, k, v)  (all-reduce #1, inside o_proj)
    selfAttn.forward(a, layout);
    // h_t = x_t + o_t
    kernels.axpy(1f, a.projected, 0, a.residual, 0, numTokens * hiddenSize);
    // b = RMSNorm_{m_t}^{post}(h_t)
    kernels.forEachRow(numTokens, t -> postAttentionLayernorm.get(modalities[t])
        .forward(kernels, a.residual, t * hiddenSize, a.normed, t * hiddenSize));
    // x'_t = h_t + Wdown(SiLU(Wgate b) * Wup b)  (all-reduce #2, inside down_proj)
    mlp.forward(a, numTokens);
    kernels.axpy(1f, a.projected, 0, a.residual, 0, numTokens * hiddenSize);
  }
}
