package dev.owlery.engine.cuda.ptx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.cuda.ptx.PtxAssembler.EntryResources;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Every kernel assembles for the H200 (sm_90) with CUDA 12.0's ptxas (JCuda's nvPTXCompiler, no GPU
 * needed), with no spills and within its register budget.
 */
class PtxAssemblyTest {

  /**
   * Registers per thread each kernel may use. An SM has 65,536 registers for up to 2,048 threads:
   * 32 per thread keeps a bandwidth-bound kernel (element-wise, GEMV, KV append) at full occupancy,
   * which is what keeps enough loads in flight. Paged attention (256-thread blocks; a query, two
   * accumulators and two positions' loads per lane) gets 64, half occupancy; so does the vision
   * tower's full attention (a query row per warp, a key's dot product and four accumulators per
   * lane). gemm_* gets 128 (256-thread blocks, 64 float accumulators and 24 fragment registers per
   * lane; two blocks per SM, as many as its 90 KiB of shared memory allow), gemm64_* 170 (128-thread
   * blocks; three per SM, as its 60 KiB allow). The vision tower's tensor-core attention gets 128 (a
   * query fragment, 32 output accumulators and a score tile per lane),
   * the usual price of a register-tiled mma kernel; the 8-token GEMV gets 128 too: 8 sums and the 16 x
   * loads of a weight chunk in flight (ptxas uses about 108), the price of reading each weight row once
   * for 8 tokens.
   */
  private static final Map<String, Integer> REGISTER_BUDGET = Map.ofEntries(
      Map.entry("embedding_f16", 32), Map.entry("embedding_bf16", 32), Map.entry("embedding_f32", 32),
      Map.entry("rms_norm", 32), Map.entry("add_rms_norm", 32), Map.entry("rope", 32), Map.entry("silu_mul", 32), Map.entry("residual_add", 32),
      Map.entry("gemv_f16", 32), Map.entry("gemv_bf16", 32), Map.entry("gemv_f32", 32),
      Map.entry("gemv8_f16", 128), Map.entry("gemv8_bf16", 128),
      Map.entry("gemm_f16", 128), Map.entry("gemm_bf16", 128), Map.entry("gemm64_f16", 170), Map.entry("gemm64_bf16", 170),
      Map.entry("gemm_split_sum", 32),
      Map.entry("kv_append", 32), Map.entry("paged_attention", 64),
      Map.entry("layer_norm", 32), Map.entry("add_table", 32), Map.entry("quick_gelu", 32),
      Map.entry("full_attention", 64), Map.entry("full_attention_f16", 128));

  @Test
  void everyKernelAssemblesForSm90WithoutSpillsWithinItsRegisterBudget() {
    assertThat(REGISTER_BUDGET.keySet())
        .containsExactlyInAnyOrderElementsOf(PtxKernels.ALL.stream().map(PtxKernel::name).toList());
    for (PtxModule module : PtxModule.values()) {
      Map<String, EntryResources> resources = PtxAssembler.assemble(module.ptx(), "sm_90");
      assertThat(resources.keySet()).as("kernels ptxas reports for %s", module)
          .containsExactlyInAnyOrderElementsOf(module.kernels().stream().map(PtxKernel::name).toList());
      for (EntryResources kernel : resources.values()) {
        assertThat(kernel.spillStoreBytes() + kernel.spillLoadBytes()).as("%s spill bytes", kernel.name()).isZero();
        assertThat(kernel.registers()).as("%s registers", kernel.name())
            .isPositive().isLessThanOrEqualTo(REGISTER_BUDGET.get(kernel.name()));
      }
    }
  }

  @Test
  void aKernelThatDoesNotAssembleFailsWithPtxassErrorLog() {
    String broken = """
        .version 8.0
        .target sm_90
        .address_size 64
        .visible .entry broken() { not_an_instruction; }
        """;
    assertThatThrownBy(() -> PtxAssembler.assemble(broken, "sm_90"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("nvPTXCompilerCompile for sm_90 failed")
        .hasMessageContaining("not_an_instruction");
  }
}
