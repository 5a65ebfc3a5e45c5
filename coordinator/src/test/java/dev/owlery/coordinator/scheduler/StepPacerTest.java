package dev.owlery.coordinator.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.coordinator.placement.ServingProfile;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class StepPacerTest {

  private static final Duration STEP_TIMEOUT = Duration.ofSeconds(4);

  @Test
  void beforeAnyStepTheBudgetComesFromTheModelsFlopsAtOneGflopPerSecond() {
    // 2.2 GFLOP per row (a 1.1B model on one shard): 2.2 s per row at 1 GFLOP/s.
    StepPacer pacer = new StepPacer(STEP_TIMEOUT, 2.2e9, ServingProfile.CPU.priorFlopsPerSecond());

    assertThat(pacer.rowBudget(512)).isEqualTo(1); // a quarter of 4 s is less than a row
    assertThat(pacer.deadline(10)).isEqualTo(Duration.ofMillis(88_000)); // 4 x 10 x 2.2 s
    // A tiny model: the budget is the step's capacity, the deadline the step timeout.
    StepPacer tiny = new StepPacer(STEP_TIMEOUT, 1e6, ServingProfile.CPU.priorFlopsPerSecond());
    assertThat(tiny.rowBudget(512)).isEqualTo(512);
    assertThat(tiny.deadline(512)).isEqualTo(STEP_TIMEOUT);
  }

  @Test
  void onAGpuTheFirstStepsOfASevenBillionModelCarryThousandsOfPromptRows() {
    // 13.5 GFLOP per row (7B) over 2 ranks: 67.5 us per row at the GPU profile's 100 TFLOP/s, so a
    // quarter of 4 s holds 14,800 rows, past the profile's 8,192-row steps; on CPU it holds none.
    StepPacer gpu = new StepPacer(STEP_TIMEOUT, 13.5e9 / 2, ServingProfile.GPU.priorFlopsPerSecond());
    StepPacer cpu = new StepPacer(STEP_TIMEOUT, 13.5e9 / 2, ServingProfile.CPU.priorFlopsPerSecond());

    assertThat(gpu.rowBudget(ServingProfile.GPU.maxNumBatchedTokens())).isEqualTo(8192);
    assertThat(gpu.deadline(8192)).isEqualTo(STEP_TIMEOUT); // 4 x 8,192 x 67.5 us = 2.2 s
    assertThat(cpu.rowBudget(ServingProfile.GPU.maxNumBatchedTokens())).isEqualTo(1);
  }

  @Test
  void observedStepsMoveTheEstimateTowardsTheirTimePerRow() {
    StepPacer pacer = new StepPacer(STEP_TIMEOUT, 2.2e9, ServingProfile.CPU.priorFlopsPerSecond());
    for (int i = 0; i < 60; i++) {
      pacer.observe(10, Duration.ofMillis(500).toNanos()); // 50 ms per row
    }

    // 1 s / 50 ms; the estimate approaches 50 ms from above (the 2.2 s prior decays by 0.7 a step).
    assertThat(pacer.rowBudget(512)).isBetween(19, 20);
    assertThat(pacer.rowBudget(16)).isEqualTo(16);
    assertThat(pacer.deadline(40).toMillis()).isBetween(7_999L, 8_001L); // 4 x 40 x 50 ms
    assertThat(pacer.deadline(2)).isEqualTo(STEP_TIMEOUT);
  }
}
