package dev.owlery.engine.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import org.junit.jupiter.api.Test;

/**
 * The probe on the machine the tests run on. CI has no NVIDIA driver, so there the probe must
 * answer the one-line reason, twice (JCuda's failed class initializer is not touched again); on a
 * machine with the driver it must find the device or give a one-line reason.
 */
class CudaDevicesTest {

  @Test
  void theProbeAnswersWithoutThrowingAndTheSameEachTime() {
    DeviceProbe first = CudaDevices.probe(0);
    DeviceProbe second = CudaDevices.probe(0);
    if (driverLibraryLoads()) {
      switch (first) {
        case DeviceProbe.Found(CudaDevice device) -> {
          assertThat(device.name()).isNotBlank();
          assertThat(device.freeBytes()).isPositive().isLessThanOrEqualTo(device.totalBytes());
          assertThat(second).isInstanceOf(DeviceProbe.Found.class);
        }
        case DeviceProbe.Unavailable(String reason) -> {
          assertThat(reason).startsWith("no CUDA device").doesNotContain("\n");
          assertThat(second).isEqualTo(first);
        }
      }
    } else {
      assertThat(first).isEqualTo(new DeviceProbe.Unavailable(CudaDevices.NO_DRIVER));
      assertThat(second).isEqualTo(first);
      assertThat(CudaDevices.NO_DRIVER).doesNotContain("\n").contains("libcuda.so.1", "--device cpu");
    }
  }

  @Test
  void anIndexPastTheDevicesNamesHowManyThereAre() {
    assertThat(CudaDevices.outOfRange(3, 1)).isEqualTo("no CUDA device cuda:3: the driver sees 1 device (cuda:0 to cuda:0)");
    assertThat(CudaDevices.outOfRange(2, 2)).isEqualTo("no CUDA device cuda:2: the driver sees 2 devices (cuda:0 to cuda:1)");
    assertThat(CudaDevices.outOfRange(0, 0)).isEqualTo("no CUDA device cuda:0: the driver sees 0 devices");
  }

  @Test
  void aDeviceDescribesItselfInOneLine() {
    CudaDevice h200 = new CudaDevice(0, "NVIDIA H200", "9.0", 143_771L << 20, 143_131L << 20);
    assertThat(h200.describe()).isEqualTo("cuda:0 NVIDIA H200 (sm 9.0), 140.4 GiB, 139.8 GiB free");
  }

  /** Whether the dynamic loader finds the NVIDIA driver library here, asked without JCuda. */
  private static boolean driverLibraryLoads() {
    try (Arena arena = Arena.ofConfined()) {
      SymbolLookup.libraryLookup("libcuda.so.1", arena);
      return true;
    } catch (IllegalArgumentException notFound) {
      return false;
    }
  }
}
