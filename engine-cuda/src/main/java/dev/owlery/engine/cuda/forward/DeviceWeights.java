package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.IndexRange;
import dev.owlery.engine.tensor.Matrix;
import java.util.List;
import java.util.function.Function;

/**
 * Loading one rank's weights into device memory by checkpoint name and split, as the CPU's
 * {@code ColumnParallelLinear}, {@code RowParallelLinear}, {@code RmsNorm} and {@code Multiway}
 * load them.
 */
final class DeviceWeights {

  private DeviceWeights() {}

  /** The output features {@code rows} of {@code name} (column parallelism), checked to be {@code [outFeatures, inFeatures]}. */
  static DeviceMatrix rows(Device device, Checkpoint checkpoint, String name, int outFeatures, int inFeatures,
      IndexRange rows) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    return DeviceMatrix.upload(device, checkpoint.weight(full.rowSlice(rows.start(), rows.end())));
  }

  /** The input features {@code columns} of {@code name} (row parallelism), checked to be {@code [outFeatures, inFeatures]}. */
  static DeviceMatrix columns(Device device, Checkpoint checkpoint, String name, int outFeatures, int inFeatures,
      IndexRange columns) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    return DeviceMatrix.upload(device, checkpoint.weight(full.colSlice(columns.start(), columns.end())));
  }

  /** One copy per modality, named as {@code Multiway.load} names them. */
  static <T> List<T> multiway(String prefix, int numModalities, Function<String, T> loader) {
    return switch (numModalities) {
      case 1 -> List.of(loader.apply(prefix + ".weight"));
      case 2 -> List.of(loader.apply(prefix + ".multiway.0.weight"), loader.apply(prefix + ".multiway.1.weight"));
      default -> throw new IllegalArgumentException("numModalities must be 1 or 2, got " + numModalities);
    };
  }

  /** RMSNorm weights of every modality as float32 {@code [numModalities, hiddenSize]}, text first. */
  static DevicePointer norms(Device device, Checkpoint checkpoint, String prefix, int numModalities, int hiddenSize) {
    List<Matrix> copies = multiway(prefix, numModalities, name -> checkpoint.tensor(name, hiddenSize).asMatrix());
    float[] weights = new float[numModalities * hiddenSize];
    for (int m = 0; m < numModalities; m++) {
      for (int i = 0; i < hiddenSize; i++) {
        weights[m * hiddenSize + i] = copies.get(m).get(0, i);
      }
    }
    return device.upload(weights);
  }
}
