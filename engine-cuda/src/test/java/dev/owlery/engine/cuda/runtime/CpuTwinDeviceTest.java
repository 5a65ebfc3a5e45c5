package dev.owlery.engine.cuda.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.cuda.ptx.PtxKernels;
import org.junit.jupiter.api.Test;

/** The twin device's own contract: launches cover the grid they are given, arguments are checked, memory is resolved. */
class CpuTwinDeviceTest {

  @Test
  void aGemvGridThatCoversTooFewRowsLeavesTheRestUnwrittenAsTheKernelWould() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      int rows = 9;
      int cols = 3;
      float[] w = new float[rows * cols];
      for (int i = 0; i < w.length; i++) {
        w[i] = i + 1;
      }
      DevicePointer out = device.allocate(4L * rows);
      DevicePointer x = device.upload(new float[] {1, 1, 1});
      // one block of 256 threads is 8 warps: rows 0..7; row 8 needs a second block
      device.launch(PtxKernels.GEMV_F32, 1, 1, out, device.upload(w), x, rows, cols);
      float[] result = device.downloadFloats(out, rows);
      assertThat(result[0]).isEqualTo(6f);
      assertThat(result[7]).isEqualTo(22f + 23 + 24);
      assertThat(result[8]).isZero();
      device.launch(PtxKernels.GEMV_F32, 2, 1, out, device.upload(w), x, rows, cols);
      assertThat(device.downloadFloats(out, rows)[8]).isEqualTo(25f + 26 + 27);
    }
  }

  @Test
  void aDeviceToDeviceCopyMovesTheBytesBetweenPointersAndIsRefusedInsideACapture() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DevicePointer src = device.upload(new float[] {1, 2, 3, 4});
      DevicePointer dst = device.allocate(16);
      device.copy(dst.plusWords(1), src.plusWords(2), 8);
      assertThat(device.downloadFloats(dst, 4)).containsExactly(0, 3, 4, 0);
      assertThatThrownBy(() -> device.capture(() -> device.copy(dst, src, 4)))
          .isInstanceOf(IllegalStateException.class).hasMessageContaining("a copy inside a graph capture");
    }
  }

  @Test
  void pointersWithOffsetsAddressInsideTheirBuffer() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DevicePointer y = device.upload(new float[] {1, 2, 3, 4, 5});
      DevicePointer x = device.upload(new float[] {10, 20});
      device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y.plusWords(3), x, 2);
      assertThat(device.downloadFloats(y, 5)).containsExactly(1, 2, 3, 14, 25);
    }
  }

  @Test
  void argumentsThatDoNotMatchTheCatalogueAreRefusedWithTheParameterNamed() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DevicePointer y = device.allocate(16);
      assertThatThrownBy(() -> device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y, y, 2f))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("argument 2 of residual_add ('n')");
      assertThatThrownBy(() -> device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y, y))
          .hasMessageContaining("residual_add takes 3 arguments");
      assertThatThrownBy(() -> device.launch(PtxKernels.RESIDUAL_ADD, 1, 65536, y, y, 1))
          .hasMessage("residual_add: a CUDA grid has at most 65535 blocks in y, given 65536");
      device.free(y);
      assertThatThrownBy(() -> device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y, y, 1))
          .hasMessageContaining("no live buffer");
    }
  }

  @Test
  void aCapturedGraphRunsNothingUntilReplayedThenReadsTheMemoryAsItIsThen() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DevicePointer y = device.upload(new float[] {1, 2});
      DevicePointer x = device.upload(new float[] {10, 20});
      try (DeviceGraph graph = device.capture(() -> {
        device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y, x, 2);
        device.launch(PtxKernels.RESIDUAL_ADD, 1, 1, y, x, 1);
      })) {
        assertThat(device.downloadFloats(y, 2)).containsExactly(1, 2);
        graph.replay();
        assertThat(device.downloadFloats(y, 2)).containsExactly(21, 22);
        device.copyToDevice(x, new float[] {100, 200}, 0, 2);
        graph.replay();
        assertThat(device.downloadFloats(y, 2)).containsExactly(221, 222);
        assertThat(device.graphReplays()).isEqualTo(2);
        assertThat(device.launches()).isEqualTo(4);
      }
      assertThatThrownBy(() -> device.capture(() -> device.copyToDevice(x, new float[] {1}, 0, 1)))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("a copy inside a graph capture: only kernel launches can be captured");
    }
  }
}
