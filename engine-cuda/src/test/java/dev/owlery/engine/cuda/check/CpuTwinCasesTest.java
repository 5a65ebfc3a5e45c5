package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The kernel check's own cases (odd sizes, block tables with holes, both modalities) run on the CPU
 * twins, each against the engine's CPU code at the tolerance the GPU is held to: the twins compute
 * what the kernels are documented to compute, through the same arguments and buffer layouts.
 */
class CpuTwinCasesTest {

  @Test
  void everyCaseOfTheKernelCheckPassesOnTheCpuTwins() {
    List<KernelCase> cases = CheckCases.all();
    try (CpuTwinDevice twins = new CpuTwinDevice()) {
      for (KernelCase c : cases) {
        Comparison comparison = Comparison.of(c.expected(), c.runOn(twins), c.tolerance());
        System.out.printf("%-16s %-70s maxAbs %.3g maxRel %.3g%n", c.kernel(), c.sizes(), comparison.maxAbsError(),
            comparison.maxRelError());
        assertThat(comparison.passed()).as("%s %s: %d of %d values out, first at %d (maxAbs %.3g)", c.kernel(),
            c.sizes(), comparison.failures(), comparison.count(), comparison.firstFailure(), comparison.maxAbsError())
            .isTrue();
        twins.freeAll();
      }
    }
    Set<String> covered = cases.stream().map(KernelCase::kernel).collect(Collectors.toSet());
    assertThat(covered).containsExactlyInAnyOrderElementsOf(PtxKernels.ALL.stream().map(PtxKernel::name).toList());
  }
}
