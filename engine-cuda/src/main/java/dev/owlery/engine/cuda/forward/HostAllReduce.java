package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.parallel.Collective;

/**
 * The row-parallel all-reduce of a device buffer through the host: device to host (this rank's
 * partial sums), the group's {@link Collective} (the shard workers' peer streams, or in-process
 * ranks), host to device. A group of one rank leaves the buffer where it is: no copy at all.
 */
final class HostAllReduce {

  private final Device device;
  private final Collective collective;
  private final float[] host;

  HostAllReduce(Device device, Collective collective, int capacity) {
    this.device = device;
    this.collective = collective;
    this.host = new float[collective.size() == 1 ? 0 : capacity];
  }

  /** Replaces {@code count} floats at {@code buffer} by their sum over the group's ranks. */
  void sum(DevicePointer buffer, int count) {
    if (collective.size() == 1) {
      return;
    }
    device.copyToHost(host, 0, buffer, count);
    collective.allReduceSum(host, 0, count);
    device.copyToDevice(buffer, host, 0, count);
  }
}
