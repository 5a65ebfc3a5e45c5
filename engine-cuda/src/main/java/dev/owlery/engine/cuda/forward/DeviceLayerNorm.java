package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * A PyTorch {@code nn.LayerNorm} with weight and bias on a device (float32 {@code [size]} each), as
 * the engine's vision {@code LayerNorm}; eps is the caller's, per spec §8's epsilon table.
 */
record DeviceLayerNorm(DevicePointer weight, DevicePointer bias, int size, float eps) {

  /** Loads {@code prefix.weight} and {@code prefix.bias}, both checked to be {@code [size]}. */
  static DeviceLayerNorm load(Device device, Checkpoint checkpoint, String prefix, int size, float eps) {
    return new DeviceLayerNorm(device.upload(checkpoint.tensor(prefix + ".weight", size).toFloatArray()),
        device.upload(checkpoint.tensor(prefix + ".bias", size).toFloatArray()), size, eps);
  }

  /** Queues the norm of {@code numRows} rows of x into out (must not alias). */
  void forward(Device device, DevicePointer x, DevicePointer out, int numRows) {
    device.launch(PtxKernels.LAYER_NORM, numRows, 1, out, x, weight, bias, size, eps);
  }
}
