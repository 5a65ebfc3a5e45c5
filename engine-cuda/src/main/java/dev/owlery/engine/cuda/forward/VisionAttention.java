package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.tensor.DType;

/**
 * The vision tower's unmasked attention, each image's query rows over its key rows, as one launch:
 * {@code full_attention_f16} (tensor cores, inputs and softmax weights rounded to F16) for a tower
 * whose weights are F16 or BF16 and whose heads fit it, else {@code full_attention} (float32
 * throughout: the F32 fixtures, which are held to the CPU within 2e-4).
 */
record VisionAttention(PtxKernel kernel, int rowsPerBlock) {

  /**
   * A view of activations: element d of head h of row i of image img at {@code data + img *
   * imageStride + i * rowStride + h * headStride + d} floats.
   */
  record Rows(DevicePointer data, int imageStride, int rowStride, int headStride) {}

  /** The kernel for a tower with {@code weights} and heads of {@code headDim}. */
  static VisionAttention of(DType weights, int headDim) {
    boolean tensorCores = (weights == DType.F16 || weights == DType.BF16) && headDim % 16 == 0
        && headDim <= PtxKernels.MAX_FULL_ATTENTION_F16_HEAD_DIM;
    return tensorCores ? new VisionAttention(PtxKernels.FULL_ATTENTION_F16, PtxKernels.FULL_ATTENTION_F16_ROWS)
        : new VisionAttention(PtxKernels.FULL_ATTENTION, PtxKernels.FULL_ATTENTION_ROWS);
  }

  /**
   * Queues {@code out[img * numQueries + i, h, :]} for {@code numImages} images of {@code numQueries}
   * query rows over {@code numKeys} key rows each, {@code numHeads} heads of {@code headDim}; k and v
   * share their strides.
   */
  void launch(Device device, DevicePointer out, Rows q, Rows k, DevicePointer v, int numImages, int numQueries,
      int numKeys, int numHeads, int headDim, float scale) {
    device.launch(kernel, numHeads, numImages * DeviceMatrix.ceilDiv(numQueries, rowsPerBlock), out, q.data(),
        k.data(), v, numQueries, numKeys, headDim, q.imageStride(), q.rowStride(), q.headStride(), k.imageStride(),
        k.rowStride(), k.headStride(), scale);
  }
}
