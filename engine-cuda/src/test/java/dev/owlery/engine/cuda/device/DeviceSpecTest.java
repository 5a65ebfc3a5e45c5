package dev.owlery.engine.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class DeviceSpecTest {

  @Test
  void cpuCudaAndCudaNParse() {
    assertThat(DeviceSpec.parse("--device", "cpu")).isEqualTo(DeviceSpec.CPU);
    assertThat(DeviceSpec.parse("--device", "cuda")).isEqualTo(new DeviceSpec.Cuda(0));
    assertThat(DeviceSpec.parse("--device", "cuda:0")).isEqualTo(new DeviceSpec.Cuda(0));
    assertThat(DeviceSpec.parse("--device", " CUDA:3 ")).isEqualTo(new DeviceSpec.Cuda(3));
    assertThat(DeviceSpec.parse("--device", "cuda-twin")).isEqualTo(new DeviceSpec.CudaTwin());
  }

  @Test
  void theFlagSpellingParsesBackToTheSameDevice() {
    for (DeviceSpec device : new DeviceSpec[] {DeviceSpec.CPU, new DeviceSpec.Cuda(0), new DeviceSpec.Cuda(7),
        new DeviceSpec.CudaTwin()}) {
      assertThat(DeviceSpec.parse("--device", device.flagValue())).isEqualTo(device);
    }
    assertThat(new DeviceSpec.Cuda(2).flagValue()).isEqualTo("cuda:2");
  }

  @Test
  void anythingElseIsRefusedInOneSentenceNamingTheForms() {
    for (String bad : new String[] {"bogus", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", "cuda:1:2", "", "cpu:0"}) {
      assertThatThrownBy(() -> DeviceSpec.parse("--device", bad))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage(("--device must be cpu, cuda, cuda:N (N a CUDA device index, 0 for the first) or cuda-twin "
              + "(the CUDA path on the CPU, slow, for tests). Given: \"%s\"").formatted(bad));
    }
  }

  @Test
  void aNegativeIndexIsRefused() {
    assertThatThrownBy(() -> new DeviceSpec.Cuda(-1)).hasMessage("a CUDA device index must be >= 0. Given: -1");
  }
}
