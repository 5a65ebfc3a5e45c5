package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * A PyTorch {@code nn.Linear} with bias on a device, as the engine's vision {@code Linear}: the
 * weight {@code [outFeatures, inFeatures]} in the checkpoint's served dtype ({@link Checkpoint#weight}),
 * the bias as float32, added after the product by {@code add_table}.
 */
record DeviceLinear(DeviceMatrix weight, DevicePointer bias) {

  /** Loads {@code prefix.weight} and {@code prefix.bias}, both shapes checked. */
  static DeviceLinear load(Device device, Checkpoint checkpoint, String prefix, int outFeatures, int inFeatures) {
    DeviceMatrix weight = DeviceMatrix.upload(device,
        checkpoint.weight(checkpoint.tensor(prefix + ".weight", outFeatures, inFeatures).asMatrix()));
    DevicePointer bias = device.upload(checkpoint.tensor(prefix + ".bias", outFeatures).toFloatArray());
    return new DeviceLinear(weight, bias);
  }

  int outFeatures() {
    return weight.rows();
  }

  /** Queues {@code out[t] = W x[t] + b} for {@code numTokens} float32 rows (must not alias). */
  void forward(Device device, DevicePointer x, DevicePointer out, int numTokens) {
    weight.multiply(device, x, out, numTokens);
    int n = Math.multiplyExact(numTokens, outFeatures());
    device.launch(PtxKernels.ADD_TABLE, DeviceDecoderLayer.strideGrid(PtxKernels.ADD_TABLE, n), 1, out, out, bias, n,
        outFeatures());
  }
}
