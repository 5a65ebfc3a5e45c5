package dev.owlery.engine.cuda.device;

/** What looking for a CUDA device found: the device, or why there is none in one line. */
public sealed interface DeviceProbe {

  /** The device is there and a context could be made on it. */
  record Found(CudaDevice device) implements DeviceProbe {}

  /**
   * No usable device.
   *
   * @param reason one sentence, starting "no CUDA device", that says what is missing and what to do
   */
  record Unavailable(String reason) implements DeviceProbe {}
}
