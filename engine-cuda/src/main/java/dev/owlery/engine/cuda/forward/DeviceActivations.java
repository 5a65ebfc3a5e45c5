package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * A step's buffers in device memory, allocated once for the slice's step capacity and named for
 * their role as in the CPU's {@code StepActivations}: float32 rows {@code residual}, {@code normed},
 * {@code query}, {@code key}, {@code value}, {@code attnOutput}, {@code projected}, {@code gate},
 * {@code up}, {@code logits}, and the int32 row descriptions the kernels read ({@code rowSeq},
 * {@code rowPos}, {@code modality}; the block tables are sized per step, {@link DeviceDecoderSlice}),
 * and the scratch of the products cut along K ({@link SplitGemm}).
 */
final class DeviceActivations {

  final DevicePointer residual; // [capacity, hiddenSize]
  final DevicePointer normed; // [capacity, hiddenSize]
  final DevicePointer query; // [capacity, numLocalHeads * headDim]
  final DevicePointer key; // [capacity, numLocalKvHeads * headDim]
  final DevicePointer value; // [capacity, numLocalKvHeads * headDim]
  final DevicePointer attnOutput; // [capacity, numLocalHeads * headDim]
  final DevicePointer projected; // [capacity, hiddenSize]: o_proj's, then down_proj's all-reduced output
  final DevicePointer gate; // [capacity, localIntermediate], SiLU(gate) * up in place
  final DevicePointer up; // [capacity, localIntermediate]
  final DevicePointer logits; // [capacity, localVocabSize]
  final DevicePointer rowSeq; // [capacity] int32: each row's sequence in the step
  final DevicePointer rowPos; // [capacity] int32: each row's position
  final DevicePointer modality; // [capacity] int32: 0 text, 1 visual
  final DevicePointer gemmScratch; // [SplitGemm.SCRATCH_FLOATS]: a K-split product's partial sums

  DeviceActivations(Device device, int capacity, int hiddenSize, int qWidth, int kvWidth, int intermediate,
      int vocab) {
    residual = words(device, capacity, hiddenSize);
    normed = words(device, capacity, hiddenSize);
    query = words(device, capacity, qWidth);
    key = words(device, capacity, kvWidth);
    value = words(device, capacity, kvWidth);
    attnOutput = words(device, capacity, qWidth);
    projected = words(device, capacity, hiddenSize);
    gate = words(device, capacity, intermediate);
    up = words(device, capacity, intermediate);
    logits = words(device, capacity, vocab);
    rowSeq = words(device, capacity, 1);
    rowPos = words(device, capacity, 1);
    modality = words(device, capacity, 1);
    gemmScratch = device.allocate(SplitGemm.SCRATCH_BYTES);
  }

  /** 4-byte elements: float32 or int32. */
  private static DevicePointer words(Device device, int rows, int width) {
    return device.allocate(Math.multiplyExact(4L * rows, width));
  }
}
