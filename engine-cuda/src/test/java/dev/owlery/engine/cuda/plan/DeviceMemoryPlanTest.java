package dev.owlery.engine.cuda.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

class DeviceMemoryPlanTest {

  private static final long MIB = 1L << 20;
  private static final long GIB = 1L << 30;
  /** An H200's memory as nvidia-smi reports it (143,771 MiB, "141 GB"); a context takes about 600 MiB. */
  private static final long H200_TOTAL = 143_771 * MIB;
  private static final long CONTEXT = 600 * MIB;

  @Test
  void llama2_7bAtTensorParallel1OnAnH200At0_9() {
    SliceFootprint slice = SliceFootprint.of(SliceFootprintTest.LLAMA2_7B, new TensorParallelRank(0, 1), DType.F16,
        KvCacheDtype.F16, 512);
    DeviceMemoryPlan plan = DeviceMemoryPlan.of(h200(H200_TOTAL - CONTEXT), 0.9, slice, 16);
    assertThat(plan.budgetBytes()).isEqualTo(135_679_338_086L); // floor(0.9 x 150,754,820,096)
    // (135,679,338,086 - 13,476,831,232 weights - 177,995,776 workspace) / (16 x 524,288) = 14,546.5
    assertThat(plan.numKvBlocks()).isEqualTo(14_546);
    assertThat(plan.kvCacheBytes()).isEqualTo(14_546L * 16 * 512 * 1024);
    assertThat(plan.budgetBytes() - slice.weightBytes() - slice.workspaceBytes() - plan.kvCacheBytes())
        .isBetween(0L, 16L * 512 * 1024 - 1);
    assertThat(plan.describe()).isEqualTo("cuda:0 NVIDIA H200 (sm 9.0), 140.4 GiB, 139.8 GiB free: 126.36 GiB of it "
        + "for weights 12.55 GiB, workspace 169.75 MiB, KV cache 113.64 GiB (14546 blocks of 16 positions)");
  }

  @Test
  void twoShardProcessesOfA7bShareOneH200AtHalfEach() {
    LlamaConfig llama = SliceFootprintTest.LLAMA2_7B;
    SliceFootprint rank0 = SliceFootprint.of(llama, new TensorParallelRank(0, 2), DType.F16, KvCacheDtype.F16, 512);
    SliceFootprint rank1 = SliceFootprint.of(llama, new TensorParallelRank(1, 2), DType.F16, KvCacheDtype.F16, 512);
    DeviceMemoryPlan first = DeviceMemoryPlan.of(h200(H200_TOTAL - CONTEXT), 0.45, rank0, 16);
    // The second process sees the first one's context and budget taken, and its own context.
    DeviceMemoryPlan second = DeviceMemoryPlan.of(h200(H200_TOTAL - 2 * CONTEXT - first.budgetBytes()), 0.45, rank1, 16);
    // (67,839,669,043 - 6,869,753,856 - 105,906,176) / (16 x 262,144) = 14,511.1
    assertThat(first.numKvBlocks()).isEqualTo(14_511);
    assertThat(second.numKvBlocks()).isEqualTo(14_511);
    // Each holds half of every position's keys and values: together twice the positions of one process at 0.45.
    assertThat(first.slice().kvBytesPerPosition()).isEqualTo(256 * 1024);
  }

  @Test
  void aFractionBeyondWhatIsFreeIsRefusedNamingTheFreeMemory() {
    SliceFootprint slice = SliceFootprint.of(SliceFootprintTest.LLAMA2_7B, new TensorParallelRank(1, 2), DType.F16,
        KvCacheDtype.F16, 512);
    long free = H200_TOTAL - 2 * CONTEXT - 135_679_338_086L;
    assertThatThrownBy(() -> DeviceMemoryPlan.of(h200(free), 0.9, slice, 16))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--gpu-memory-utilization 0.9 asks for 126.36 GiB of cuda:0's 140.40 GiB, but only 12.87 GiB is "
            + "free (other processes hold the rest); lower it, or give each process on this GPU a fraction so that "
            + "together they stay below what is free");
  }

  @Test
  void aSliceTooBigForItsShareSaysHowMuchIsMissing() {
    SliceFootprint slice = SliceFootprint.of(SliceFootprintTest.LLAMA2_7B, new TensorParallelRank(0, 1), DType.F32,
        KvCacheDtype.F16, 512);
    CudaDevice card = new CudaDevice(0, "NVIDIA L4", "8.9", 24 * GIB, 24 * GIB - 500 * MIB);
    // 26,953,662,464 weights + 177,995,776 workspace + 8,388,608 for one block - 23,192,823,398 budget = 3,947,223,450
    assertThatThrownBy(() -> DeviceMemoryPlan.of(card, 0.9, slice, 16))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("the slice needs 25.10 GiB for its F32 weights, 169.75 MiB of workspace for 512 batched tokens and "
            + "8.00 MiB for one KV block of 16 positions: 3.68 GiB more than --gpu-memory-utilization 0.9 gives it on "
            + "cuda:0 (21.60 GiB of 24.00 GiB); raise it, use more shards, or lower --max-num-batched-tokens");
  }

  @Test
  void tinyOwl2FitsASmallShareWithTheRestInKvBlocks() {
    LlamaConfig text = ModelConfig.load(Fixtures.tinyOwl2()).text();
    SliceFootprint slice = SliceFootprint.of(text, new TensorParallelRank(0, 1), DType.F32, KvCacheDtype.F16, 512);
    // Workspace: 512 tokens x 4 bytes x (3 x 64 + 2 x 64 + 2 x 64 + 2 x 172 + 32,000 logits) and 8,650,752
    // bytes of K-split scratch.
    assertThat(slice.workspaceBytes()).isEqualTo(67_158_016L + 8_650_752L);
    CudaDevice device = new CudaDevice(0, "small", "9.0", 256 * MIB, 250 * MIB);
    DeviceMemoryPlan plan = DeviceMemoryPlan.of(device, 0.5, slice, 16);
    assertThat(plan.budgetBytes()).isEqualTo(128 * MIB);
    assertThat(plan.numKvBlocks()).isEqualTo((int) ((128 * MIB - slice.weightBytes() - 75_808_768L) / (16 * 512)));
    assertThat(plan.numKvBlocks()).isBetween(4900, 5200);

    long missing = slice.weightBytes() + 75_808_768L + 16 * 512 - (long) Math.floor(0.9 * 64 * MIB);
    assertThatThrownBy(() -> DeviceMemoryPlan.of(new CudaDevice(0, "tiny", "9.0", 64 * MIB, 64 * MIB), 0.9, slice, 16))
        .hasMessageContaining(": %s more than --gpu-memory-utilization 0.9 gives it on cuda:0 (57.60 MiB of 64.00 MiB)"
            .formatted(DeviceMemoryPlan.bytes(missing)));
  }

  @Test
  void aUtilizationOutsideZeroToOneIsRefused() {
    SliceFootprint slice = SliceFootprint.of(SliceFootprintTest.LLAMA2_7B, new TensorParallelRank(0, 1), DType.F16,
        KvCacheDtype.F16, 512);
    for (double bad : new double[] {0, -0.5, 1.01, 90, Double.NaN}) {
      assertThatThrownBy(() -> DeviceMemoryPlan.of(h200(H200_TOTAL), bad, slice, 16))
          .hasMessage("--gpu-memory-utilization must be > 0 and <= 1 (a fraction of the device's total memory). Given: "
              + bad);
    }
    assertThat(DeviceMemoryPlan.of(h200(H200_TOTAL), 1.0, slice, 16).budgetBytes()).isEqualTo(H200_TOTAL);
  }

  private static CudaDevice h200(long free) {
    return new CudaDevice(0, "NVIDIA H200", "9.0", H200_TOTAL, free);
  }
}
