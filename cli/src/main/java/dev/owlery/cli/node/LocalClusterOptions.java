package dev.owlery.cli.node;

import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.visionworker.HostKernels;
import java.nio.file.Path;
import java.util.List;

/**
 * How {@link LocalCluster#start(Path, int, int, int, java.io.PrintWriter, LocalClusterOptions)}
 * starts its nodes, beyond the model and the cluster's sizes.
 *
 * @param jvmOptions extra options for every child JVM (e.g. -Xmx)
 * @param coordinatorArgs added to the coordinator's command line (e.g. {@code --max-num-seqs=32})
 * @param apiKey the key this cluster's own calls send, for a coordinator started with {@code
 *     --api-keys} among {@code coordinatorArgs}; null: none
 * @param certs with TLS on every link, the folder of the development CA and the nodes'
 *     certificates; null: plaintext
 * @param weights how the shard and vision workers hold their weight matrices ({@code --weights})
 * @param devices the device of each shard worker ({@code --devices}); null: every shard on the CPU
 * @param visionDevices the device of each vision worker ({@code --vision-devices}); empty: every one
 *     on the CPU
 * @param visionKernels the kernels of the vision workers on the CPU ({@code --vision-kernels})
 * @param shardKernels the decoder kernels of the shard workers on the CPU ({@code --shard-kernels}: auto, vector, native or native-bf16)
 */
public record LocalClusterOptions(List<String> jvmOptions, List<String> coordinatorArgs, String apiKey, Path certs,
    WeightFormat weights, DeviceList devices, List<DeviceSpec> visionDevices, HostKernels visionKernels,
    KernelSet shardKernels) {

  /** No extra JVM or coordinator options, no API key, plaintext, the workers' default weights, the CPU. */
  public static final LocalClusterOptions DEFAULT =
      new LocalClusterOptions(List.of(), List.of(), null, null, WeightFormat.STORED, null, List.of(), HostKernels.VECTOR,
          KernelSet.AUTO);

  public LocalClusterOptions {
    jvmOptions = List.copyOf(jvmOptions);
    coordinatorArgs = List.copyOf(coordinatorArgs);
    visionDevices = List.copyOf(visionDevices);
    certs = certs == null ? null : certs.toAbsolutePath();
    if (weights == null) {
      throw new IllegalArgumentException("weights must be set (WeightFormat.STORED is the workers' default)");
    }
    if (visionKernels == null) {
      throw new IllegalArgumentException("visionKernels must be set (HostKernels.VECTOR is the workers' default)");
    }
    if (shardKernels == null || shardKernels == KernelSet.SCALAR) {
      throw new IllegalArgumentException("shardKernels must be AUTO, VECTOR, NATIVE or NATIVE_BF16, got " + shardKernels);
    }
  }

  public LocalClusterOptions withJvmOptions(List<String> options) {
    return new LocalClusterOptions(options, coordinatorArgs, apiKey, certs, weights, devices, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withCoordinatorArgs(List<String> args) {
    return new LocalClusterOptions(jvmOptions, args, apiKey, certs, weights, devices, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withApiKey(String key) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, key, certs, weights, devices, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withCerts(Path folder) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, folder, weights, devices, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withWeights(WeightFormat format) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, certs, format, devices, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withDevices(DeviceList list) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, certs, weights, list, visionDevices, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withVisionDevices(List<DeviceSpec> list) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, certs, weights, devices, list, visionKernels,
        shardKernels);
  }

  public LocalClusterOptions withShardKernels(KernelSet kernels) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, certs, weights, devices, visionDevices, visionKernels,
        kernels);
  }

  public LocalClusterOptions withVisionKernels(HostKernels kernels) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, certs, weights, devices, visionDevices, kernels,
        shardKernels);
  }
}
