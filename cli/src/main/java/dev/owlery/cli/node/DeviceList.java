package dev.owlery.cli.node;

import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * {@code owlery local --devices}: the device of each shard worker, in the order they start (the
 * group's ranks, then the standbys). {@code N} or {@code cuda:N} is CUDA device N; {@code twin} (or
 * {@code cuda-twin}) is the CUDA path on the CPU, each shard its own twin. Shards and vision
 * workers ({@code --vision-devices}) on the same CUDA device split {@code gpuMemoryUtilization} of
 * its memory evenly, as vLLM's flag is a per-process fraction of the whole device.
 *
 * @param devices one per shard worker
 * @param gpuMemoryUtilization the fraction of each CUDA device the processes on it use together
 */
record DeviceList(List<DeviceSpec> devices, double gpuMemoryUtilization) {

  private static final Pattern INDEX = Pattern.compile("[0-9]{1,4}");

  DeviceList {
    devices = List.copyOf(devices);
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
  }

  /**
   * Parses a comma-separated list, e.g. {@code 0,1}, {@code cuda:0,cuda:0} or {@code twin,twin}.
   *
   * @throws IllegalArgumentException naming the entry and the accepted forms
   */
  static DeviceList parse(String text, double gpuMemoryUtilization) {
    List<DeviceSpec> devices = new ArrayList<>();
    for (String entry : text.split(",", -1)) {
      DeviceSpec device = entry(entry);
      if (device == null) {
        throw new IllegalArgumentException(("--devices lists one device per shard worker, comma-separated: N or cuda:N "
            + "(CUDA device N) or twin (the CUDA path on the CPU, for tests). Given: \"%s\", whose entry \"%s\" is "
            + "none of these").formatted(text, entry));
      }
      devices.add(device);
    }
    return new DeviceList(devices, gpuMemoryUtilization);
  }

  /**
   * {@code owlery local --vision-devices}: the device of each of {@code numVisionWorkers} vision
   * workers, as {@link #parse} reads them or {@code cpu}.
   *
   * @throws IllegalArgumentException naming the entry and the accepted forms, or the count
   */
  static List<DeviceSpec> parseVision(String text, int numVisionWorkers) {
    List<DeviceSpec> devices = new ArrayList<>();
    for (String entry : text.split(",", -1)) {
      DeviceSpec device = entry.strip().equalsIgnoreCase("cpu") ? DeviceSpec.CPU : entry(entry);
      if (device == null) {
        throw new IllegalArgumentException(("--vision-devices lists one device per vision worker, comma-separated: cpu, "
            + "N or cuda:N (CUDA device N) or twin (the CUDA path on the CPU, for tests). Given: \"%s\", whose entry "
            + "\"%s\" is none of these").formatted(text, entry));
      }
      devices.add(device);
    }
    if (devices.size() != numVisionWorkers) {
      throw new IllegalArgumentException("--vision-devices lists %d device%s for %d vision worker%s (--vision-workers); "
          .formatted(devices.size(), devices.size() == 1 ? "" : "s", numVisionWorkers, numVisionWorkers == 1 ? "" : "s")
          + "give one device per vision worker");
    }
    return List.copyOf(devices);
  }

  /** A CUDA device or a twin as the lists name them; null for anything else. */
  private static DeviceSpec entry(String entry) {
    String value = entry.strip().toLowerCase(Locale.ROOT);
    if (INDEX.matcher(value).matches()) {
      return new DeviceSpec.Cuda(Integer.parseInt(value));
    } else if (value.equals("twin") || value.equals("cuda-twin")) {
      return new DeviceSpec.CudaTwin();
    } else if (value.startsWith("cuda:") && INDEX.matcher(value.substring(5)).matches()) {
      return new DeviceSpec.Cuda(Integer.parseInt(value.substring(5)));
    }
    return null;
  }

  /**
   * Checks that the list names a device for each of {@code numShards} group members and {@code
   * numStandbys} standbys.
   */
  void requireOnePerShard(int numShards, int numStandbys) {
    if (devices.size() != numShards + numStandbys) {
      throw new IllegalArgumentException(("--devices lists %d device%s for %d shard worker%s (--shards %d, "
          + "--standby-shards %d); give one device per shard worker").formatted(devices.size(),
          devices.size() == 1 ? "" : "s", numShards + numStandbys, numShards + numStandbys == 1 ? "" : "s",
          numShards, numStandbys));
    }
  }

  /**
   * The {@code owlery shard-worker} options of the {@code index}-th shard worker: its device and its
   * share of it, split evenly with the other shards and the vision workers ({@code visionDevices})
   * on the same CUDA device.
   */
  List<String> shardArgs(int index, List<DeviceSpec> visionDevices) {
    if (index < 0 || index >= devices.size()) {
      throw new IllegalStateException("--devices names %d devices, one per shard worker; shard %d has none"
          .formatted(devices.size(), index));
    }
    DeviceSpec device = devices.get(index);
    if (device instanceof DeviceSpec.Cpu) {
      throw new IllegalStateException("--devices lists CUDA devices and twins only");
    }
    return deviceArgs(device, visionDevices);
  }

  /**
   * The {@code owlery vision-worker} options of the vision worker on {@code visionDevices[index]}:
   * its device and, on a CUDA device or twin, its share, split as {@link #shardArgs} splits it.
   */
  List<String> visionArgs(int index, List<DeviceSpec> visionDevices) {
    DeviceSpec device = visionDevices.get(index);
    return device instanceof DeviceSpec.Cpu ? List.of("--device", device.flagValue()) : deviceArgs(device, visionDevices);
  }

  private List<String> deviceArgs(DeviceSpec device, List<DeviceSpec> visionDevices) {
    double share = switch (device) {
      case DeviceSpec.Cuda cuda ->
          gpuMemoryUtilization / (Collections.frequency(devices, cuda) + Collections.frequency(visionDevices, cuda));
      case DeviceSpec.CudaTwin twin -> gpuMemoryUtilization; // each process's twin is its own heap
      case DeviceSpec.Cpu cpu -> throw new IllegalStateException("the CPU has no share to split");
    };
    return List.of("--device", device.flagValue(), "--gpu-memory-utilization", String.format(Locale.ROOT, "%s", share));
  }
}
