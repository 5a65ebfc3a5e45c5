package dev.owlery.engine.cuda.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class SliceFootprintTest {

  static final LlamaConfig LLAMA2_7B = DevicePlanReport.LLAMA2_7B;

  @Test
  void llama2_7bAtTensorParallel1HoldsItsParameterCountInF16() {
    SliceFootprint slice = SliceFootprint.of(LLAMA2_7B, new TensorParallelRank(0, 1), DType.F16, KvCacheDtype.F16, 512);
    // LLaMA-2-7B has 6,738,415,616 parameters, 2 bytes each.
    assertThat(slice.weightBytes()).isEqualTo(6_738_415_616L * 2);
    // 32 layers x 32 kv heads x 128 x (k, v) x 2 bytes: the README's 0.5 MiB per position.
    assertThat(slice.kvBytesPerPosition()).isEqualTo(512 * 1024);
    // Per token, floats: 3 x 4096 + 2 x 4096 (q, attention out) + 2 x 4096 (k, v) + 2 x 11008 + 32000 logits;
    // and the K-split products' scratch: 2 x 264 tiles of 64 x 64 floats.
    assertThat(slice.workspaceBytes())
        .isEqualTo(4L * 512 * (3 * 4096 + 2 * 4096 + 2 * 4096 + 2 * 11008 + 32000) + 4L * 2 * 264 * 64 * 64);
  }

  @Test
  void llama2_7bAtTensorParallel2SplitsLayersAndLmHeadButReplicatesTheEmbedding() {
    for (int rank = 0; rank < 2; rank++) {
      SliceFootprint slice =
          SliceFootprint.of(LLAMA2_7B, new TensorParallelRank(rank, 2), DType.BF16, KvCacheDtype.F16, 512);
      long layerMatrices = 32L * (4L * 4096 * 4096 + 3L * 4096 * 11008);
      long embedding = 32000L * 4096;
      long norms = 32L * 2 * 4096 + 4096;
      assertThat(slice.weightBytes()).isEqualTo(2 * (layerMatrices / 2 + embedding + embedding / 2 + norms))
          .isEqualTo(6_869_753_856L);
      assertThat(slice.kvBytesPerPosition()).isEqualTo(256 * 1024);
      assertThat(slice.workspaceBytes())
          .isEqualTo(4L * 512 * (3 * 4096 + 2 * 2048 + 2 * 2048 + 2 * 5504 + 16000) + 8_650_752L);
    }
  }

  @Test
  void f32WeightsTakeTwiceTheBytesOfF16() {
    TensorParallelRank whole = new TensorParallelRank(0, 1);
    assertThat(SliceFootprint.of(LLAMA2_7B, whole, DType.F32, KvCacheDtype.F16, 1).weightBytes())
        .isEqualTo(2 * SliceFootprint.of(LLAMA2_7B, whole, DType.F16, KvCacheDtype.F16, 1).weightBytes());
  }

  @Test
  void tinyOwl2sWeightsAreItsCheckpointsDecoderTensorsWithBothModalities() {
    Path dir = Fixtures.tinyOwl2();
    LlamaConfig text = ModelConfig.load(dir).text();
    assertThat(text.numModalities()).isEqualTo(2);
    SliceFootprint slice = SliceFootprint.of(text, new TensorParallelRank(0, 1), DType.F32, KvCacheDtype.F16, 512);
    assertThat(slice.weightBytes()).isEqualTo(decoderBytes(dir.resolve("model.safetensors"), false));
    // 2 layers x 4 kv heads x 16 x (k, v) x 2 bytes.
    assertThat(slice.kvBytesPerPosition()).isEqualTo(2 * 4 * 16 * 2 * 2);
  }

  @Test
  void stories260kTiesItsLmHeadToTheEmbedding() {
    Path dir = Fixtures.stories260k();
    LlamaConfig text = ModelConfig.load(dir).text();
    assertThat(text.tieWordEmbeddings()).isTrue();
    SliceFootprint slice = SliceFootprint.of(text, new TensorParallelRank(0, 1), DType.F32, KvCacheDtype.F16, 64);
    assertThat(slice.weightBytes()).isEqualTo(decoderBytes(dir.resolve("model.safetensors"), true));
  }

  @Test
  void theRanksOfAGroupTogetherHoldTheWholeModelPlusReplicatedEmbeddingsAndNorms() {
    LlamaConfig text = ModelConfig.load(Fixtures.tinyOwl2()).text();
    long whole = SliceFootprint.of(text, new TensorParallelRank(0, 1), DType.F16, KvCacheDtype.F16, 1).weightBytes();
    long sum = 0;
    for (int rank = 0; rank < 4; rank++) {
      sum += SliceFootprint.of(text, new TensorParallelRank(rank, 4), DType.F16, KvCacheDtype.F16, 1).weightBytes();
    }
    // Every rank but one holds another copy of the embedding, the final norm and each layer's norms.
    long replicated = 2L * ((long) text.vocabSize() * text.hiddenSize() + text.hiddenSize()
        + (long) text.numLayers() * 2 * text.numModalities() * text.hiddenSize());
    assertThat(sum).isEqualTo(whole + 3 * replicated);
  }

  @Test
  void quantizedWeightsAndAnEmptyBatchAreRefused() {
    TensorParallelRank whole = new TensorParallelRank(0, 1);
    assertThatThrownBy(() -> SliceFootprint.of(LLAMA2_7B, whole, DType.Q8_0, KvCacheDtype.F16, 512))
        .hasMessage("weights on a CUDA device are F16, BF16 or F32. Given: Q8_0");
    assertThatThrownBy(() -> SliceFootprint.of(LLAMA2_7B, whole, DType.F16, KvCacheDtype.F16, 0))
        .hasMessage("max_num_batched_tokens must be >= 1. Given: 0");
  }

  /**
   * Bytes of the decoder's tensors in a safetensors file (RoPE's stored inv_freq is computed, not
   * held; a tied lm_head is the embedding's rows, so its stored copy is not held either).
   */
  private static long decoderBytes(Path file, boolean tied) {
    long bytes = 0;
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(file)) {
      for (String name : checkpoint.names()) {
        boolean decoder = name.startsWith("model.layers.") || name.startsWith("model.embed_tokens.")
            || name.startsWith("model.norm.") || (name.startsWith("lm_head.") && !tied);
        if (decoder && !name.endsWith("rotary_emb.inv_freq")) {
          Tensor tensor = checkpoint.tensor(name);
          bytes += tensor.dtype().bytesOf(tensor.numElements());
        }
      }
    }
    return bytes;
  }
}
