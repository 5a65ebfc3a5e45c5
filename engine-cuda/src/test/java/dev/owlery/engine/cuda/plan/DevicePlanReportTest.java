package dev.owlery.engine.cuda.plan;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DevicePlanReportTest {

  @Test
  void reportsTheProbesReasonOrTheDeviceAndBothPlans() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int status = DevicePlanReport.run(0, new PrintStream(bytes, true, StandardCharsets.UTF_8));
    String out = bytes.toString(StandardCharsets.UTF_8);

    switch (CudaDevices.probe(0)) {
      case DeviceProbe.Unavailable(String reason) -> {
        assertThat(status).isEqualTo(DevicePlanReport.NO_DEVICE);
        assertThat(out).isEqualTo(reason + System.lineSeparator());
      }
      case DeviceProbe.Found(var device) -> {
        assertThat(status).isZero();
        assertThat(out.lines()).hasSize(3);
        assertThat(out).contains("LLaMA-2-7B F16, TP 1 at 0.9: cuda:0 ", " blocks of 16 positions)");
      }
    }
  }
}
