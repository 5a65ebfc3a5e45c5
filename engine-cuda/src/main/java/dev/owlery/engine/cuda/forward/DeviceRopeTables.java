package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/** {@link RopeTables} in device memory, as the {@code rope} kernel takes them. */
record DeviceRopeTables(DevicePointer cos, DevicePointer sin, int maxPositions) {

  static DeviceRopeTables upload(Device device, RopeTables tables, int maxPositions) {
    return new DeviceRopeTables(device.upload(tables.cos()), device.upload(tables.sin()), maxPositions);
  }
}
