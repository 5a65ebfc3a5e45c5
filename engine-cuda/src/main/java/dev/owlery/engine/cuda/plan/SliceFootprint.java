package dev.owlery.engine.cuda.plan;

import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.forward.SplitGemm;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;

/**
 * The device memory one tensor-parallel rank's decoder slice needs, apart from its KV pool.
 *
 * @param weightDtype how the slice's weights are held on the device
 * @param weightBytes every weight of the slice: the embedding (replicated on every rank), per layer
 *     the norms and k/v projections once per modality, this rank's q/k/v/o heads and MLP share,
 *     the final norm, and this rank's lm_head rows (none when tied: they are rows of the embedding)
 * @param maxNumBatchedTokens the most tokens one step carries (the coordinator's {@code
 *     --max-num-batched-tokens})
 * @param workspaceBytes float32 activations of a step of {@code maxNumBatchedTokens} tokens: per
 *     token the residual stream, its normed copy and the row-parallel partial sum ({@code 3 x
 *     hidden}), queries and attention output ({@code 2 x local heads x head dim}), keys and values
 *     ({@code 2 x local kv heads x head dim}), gate and up ({@code 2 x local intermediate}) and the
 *     logits of this rank's vocabulary rows; attention scores are not held (online softmax); and
 *     the fixed scratch of the products cut along K ({@link SplitGemm#SCRATCH_BYTES}, 8.3 MiB)
 * @param kvBytesPerPosition one position's keys and values over every layer and this rank's kv heads
 */
public record SliceFootprint(DType weightDtype, long weightBytes, int maxNumBatchedTokens, long workspaceBytes,
    long kvBytesPerPosition) {

  /** Bytes of one float32 activation element. */
  static final int ACTIVATION_BYTES = 4;

  /**
   * The dtype a slice's weights have on a device when held in {@code format} ({@code --weights}):
   * the checkpoint's own, {@code stored}, for {@code mapped} and {@code stored}, else the format's.
   *
   * @throws IllegalArgumentException for the quantized formats, which no device kernel reads
   */
  public static DType deviceDtype(WeightFormat format, DType stored) {
    return switch (format) {
      case MAPPED, STORED -> stored;
      case F16 -> DType.F16;
      case BF16 -> DType.BF16;
      case Q8_0, Q4_0 -> throw new IllegalArgumentException(
          "weights on a CUDA device are F16, BF16 or as stored; --weights %s is for the CPU".formatted(format.flagName()));
    };
  }

  /**
   * The footprint of {@code rank}'s slice of {@code text}.
   *
   * @throws IllegalArgumentException when the weights are not F16, BF16 or F32 (the device
   *     kernels' formats), the batch is empty, or the heads cannot be split over the group
   */
  public static SliceFootprint of(LlamaConfig text, TensorParallelRank rank, DType weightDtype, KvCacheDtype kvCache,
      int maxNumBatchedTokens) {
    switch (weightDtype) {
      case F16, BF16, F32 -> { }
      case I64, I32, U8, Q8_0, Q4_0 -> throw new IllegalArgumentException(
          "weights on a CUDA device are F16, BF16 or F32. Given: " + weightDtype);
    }
    if (maxNumBatchedTokens < 1) {
      throw new IllegalArgumentException("max_num_batched_tokens must be >= 1. Given: " + maxNumBatchedTokens);
    }
    long hidden = text.hiddenSize();
    long qSize = (long) rank.heads(text.numHeads()).size() * text.headDim();
    int numLocalKvHeads = rank.kvHeads(text.numHeads(), text.numKvHeads()).size();
    long kvSize = (long) numLocalKvHeads * text.headDim();
    long intermediate = rank.evenShare("intermediate_size", text.intermediateSize()).size();
    long vocabRows = rank.vocab(text.vocabSize()).size();
    int modalities = text.numModalities();

    long perLayer = 2L * modalities * hidden // input_layernorm, post_attention_layernorm
        + qSize * hidden // q_proj
        + 2L * modalities * kvSize * hidden // k_proj, v_proj
        + hidden * qSize // o_proj
        + 3L * intermediate * hidden; // gate_proj, up_proj, down_proj
    long weights = (long) text.vocabSize() * hidden // embed_tokens
        + text.numLayers() * perLayer
        + hidden // norm
        + (text.tieWordEmbeddings() ? 0 : vocabRows * hidden); // lm_head
    long activationsPerToken = 3 * hidden + 2 * qSize + 2 * kvSize + 2 * intermediate + vocabRows;
    return new SliceFootprint(weightDtype, weightDtype.bytesOf(weights), maxNumBatchedTokens,
        ACTIVATION_BYTES * activationsPerToken * maxNumBatchedTokens + SplitGemm.SCRATCH_BYTES,
        KvBlockPool.bytes(text.numLayers(), numLocalKvHeads, text.headDim(), 1, 1, kvCache));
  }
}
