package dev.owlery.engine.cuda.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.forward.DeviceVisionTower;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DeviceGraph;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The vision tower's footprint is what {@link DeviceVisionTower} allocates, byte for byte (counted on
 * the CPU twins), and a vision worker's plan refuses a pass that does not fit its share of the GPU.
 */
class VisionFootprintTest {

  /** Counts what the tower allocates; everything else goes to the twins. */
  private static final class CountingDevice implements Device {
    final CpuTwinDevice twins = new CpuTwinDevice();
    long allocated;

    @Override public String name() { return twins.name(); }
    @Override public DevicePointer allocate(long bytes) { allocated += bytes; return twins.allocate(bytes); }
    @Override public void free(DevicePointer start) { twins.free(start); }
    @Override public void freeAll() { twins.freeAll(); }
    @Override public void copyToDevice(DevicePointer dst, float[] src, int off, int n) { twins.copyToDevice(dst, src, off, n); }
    @Override public void copyToDevice(DevicePointer dst, int[] src, int off, int n) { twins.copyToDevice(dst, src, off, n); }
    @Override public void copyToDevice(DevicePointer dst, short[] src, int off, int n) { twins.copyToDevice(dst, src, off, n); }
    @Override public void copyToDevice(DevicePointer dst, byte[] src, int off, int n) { twins.copyToDevice(dst, src, off, n); }
    @Override public void copy(DevicePointer dst, DevicePointer src, long bytes) { twins.copy(dst, src, bytes); }
    @Override public void copyToHost(float[] dst, int off, DevicePointer src, int n) { twins.copyToHost(dst, off, src, n); }
    @Override public void copyToHost(short[] dst, int off, DevicePointer src, int n) { twins.copyToHost(dst, off, src, n); }
    @Override public void launch(PtxKernel kernel, int gridX, int gridY, Object... args) { twins.launch(kernel, gridX, gridY, args); }
    @Override public DeviceGraph capture(Runnable launches) { return twins.capture(launches); }
    @Override public void synchronize() { twins.synchronize(); }
    @Override public void close() { twins.close(); }
  }

  @ParameterizedTest(name = "--weights {0}, {1} image(s) per pass")
  @CsvSource({"stored, 1", "stored, 3", "f16, 2", "bf16, 1"})
  void isWhatTheTowerAllocatesOnTheDevice(String format, int images) {
    Path dir = Fixtures.tinyOwl2();
    ModelConfig config = ModelConfig.load(dir);
    WeightFormat weights = WeightFormat.parse(format);
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors")).withWeightFormat(weights);
        CountingDevice device = new CountingDevice()) {
      VisionFootprint footprint = VisionFootprint.of(config, checkpoint, weights);
      new DeviceVisionTower(device, config, checkpoint, images);

      assertThat(device.allocated).isEqualTo(footprint.bytes(images));
      assertThat(footprint.workspaceBytesPerImage()).isPositive();
      if (!format.equals("stored")) {
        // F32 checkpoint: the linear layers' matrices halve, the rest stays float32
        try (Checkpoint stored = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))) {
          assertThat(footprint.weightBytes()).isLessThan(VisionFootprint.of(config, stored, WeightFormat.STORED)
              .weightBytes());
        }
      }
    }
  }

  @Test
  void aPassThatDoesNotFitItsShareIsRefusedSayingHowManyImagesWould() {
    VisionFootprint footprint = new VisionFootprint(600L << 20, 100L << 20);
    CudaDevice gpu = new CudaDevice(0, "NVIDIA H200", "9.0", 140L << 30, 139L << 30);

    VisionMemoryPlan plan = VisionMemoryPlan.of(gpu, 0.1, footprint, 16);
    assertThat(plan.budgetBytes()).isEqualTo((long) Math.floor(0.1 * (140L << 30)));

    // 1% of 140 GiB is 1.4 GiB: the 600 MiB of weights and 8 images of 100 MiB
    assertThatThrownBy(() -> VisionMemoryPlan.of(gpu, 0.01, footprint, 16)).hasMessage("the vision tower needs "
        + "600.00 MiB for its weights and 1.56 GiB of workspace for a pass of 16 images: 766.40 MiB more than "
        + "--gpu-memory-utilization 0.01 gives it on cuda:0 (1.40 GiB of 140.00 GiB); raise it, or lower "
        + "--max-batch-images to 8 or fewer");
    assertThatThrownBy(() -> VisionMemoryPlan.of(gpu, 0.001, footprint, 1))
        .hasMessageEndingWith("not even the weights and one image fit: raise it");
    assertThatThrownBy(() -> VisionMemoryPlan.of(new CudaDevice(0, "busy", "9.0", 140L << 30, 10L << 30), 0.5,
        footprint, 1)).hasMessageContaining("but only 10.00 GiB is free");
    assertThatThrownBy(() -> VisionMemoryPlan.of(gpu, 0.1, footprint, 0)).hasMessageContaining("--max-batch-images");
  }
}
