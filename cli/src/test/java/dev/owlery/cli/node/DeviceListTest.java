package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cli.Owlery;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code owlery local --devices} and {@code --vision-devices}: which device each shard worker gets
 * and its share of it, each vision worker's device, and bad lists refused in one line before any
 * node starts.
 */
class DeviceListTest {

  @Test
  void eachShardGetsItsDeviceAndShardsOnOneDeviceSplitItsShare() {
    DeviceList list = DeviceList.parse("0, cuda:0,1,twin,CUDA-TWIN", 0.9);

    assertThat(list.devices()).containsExactly(new DeviceSpec.Cuda(0), new DeviceSpec.Cuda(0), new DeviceSpec.Cuda(1),
        new DeviceSpec.CudaTwin(), new DeviceSpec.CudaTwin());
    assertThat(list.shardArgs(0, List.of())).containsExactly("--device", "cuda:0", "--gpu-memory-utilization", "0.45");
    assertThat(list.shardArgs(1, List.of())).containsExactly("--device", "cuda:0", "--gpu-memory-utilization", "0.45");
    assertThat(list.shardArgs(2, List.of())).containsExactly("--device", "cuda:1", "--gpu-memory-utilization", "0.9");
    // each shard's twin is its own heap: nothing to split
    assertThat(list.shardArgs(3, List.of())).containsExactly("--device", "cuda-twin", "--gpu-memory-utilization", "0.9");
    assertThatThrownBy(() -> list.shardArgs(5, List.of()))
        .hasMessage("--devices names 5 devices, one per shard worker; shard 5 has none");
  }

  @Test
  void visionWorkersOnAShardsDeviceSplitItsShareWithTheShards() {
    DeviceList list = DeviceList.parse("0,0,1", 0.8);
    List<DeviceSpec> vision = DeviceList.parseVision("0,cpu,1,twin", 4);

    // cuda:0 holds two shards and one vision worker, cuda:1 a shard and a vision worker
    assertThat(list.shardArgs(0, vision)).containsExactly("--device", "cuda:0", "--gpu-memory-utilization",
        String.valueOf(0.8 / 3));
    assertThat(list.visionArgs(0, vision)).containsExactly("--device", "cuda:0", "--gpu-memory-utilization",
        String.valueOf(0.8 / 3));
    assertThat(list.visionArgs(1, vision)).containsExactly("--device", "cpu");
    assertThat(list.shardArgs(2, vision)).containsExactly("--device", "cuda:1", "--gpu-memory-utilization", "0.4");
    assertThat(list.visionArgs(2, vision)).containsExactly("--device", "cuda:1", "--gpu-memory-utilization", "0.4");
    assertThat(list.visionArgs(3, vision)).containsExactly("--device", "cuda-twin", "--gpu-memory-utilization", "0.8");
  }

  @Test
  void aBadEntryIsNamed() {
    for (String bad : List.of("0,,1", "gpu0", "cuda:x", "-1", "cpu")) {
      assertThatThrownBy(() -> DeviceList.parse(bad, 0.9)).isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("--devices lists one device per shard worker, comma-separated: N or cuda:N (CUDA "
              + "device N) or twin (the CUDA path on the CPU, for tests). Given: \"" + bad + "\", whose entry");
    }
    assertThatThrownBy(() -> DeviceList.parse("0", 1.5)).hasMessageStartingWith("--gpu-memory-utilization must be > 0");
  }

  @Test
  void theLocalCommandRefusesAListThatDoesNotGiveEachShardOneDeviceBeforeAnyNodeStarts() {
    String model = Fixtures.stories260k().toString();
    assertThat(local("--model", model, "--shards", "2", "--devices", "0,1,2")).isEqualTo("owlery: error: --devices "
        + "lists 3 devices for 2 shard workers (--shards 2, --standby-shards 0); give one device per shard worker");
    assertThat(local("--model", model, "--devices", "twin", "--standby-shards", "1")).isEqualTo("owlery: error: "
        + "--devices lists 1 device(s), which --standby-shards 1 takes all of; list one more per shard of the group");
    assertThat(local("--model", model, "--devices", "0,gpu")).startsWith("owlery: error: --devices lists one device "
        + "per shard worker, comma-separated");
  }

  @Test
  void eachVisionWorkerGetsItsDeviceAndBadListsAreRefusedBeforeAnyNodeStarts() {
    assertThat(DeviceList.parseVision("cpu, 1,cuda:0,twin", 4)).containsExactly(DeviceSpec.CPU, new DeviceSpec.Cuda(1),
        new DeviceSpec.Cuda(0), new DeviceSpec.CudaTwin());
    assertThatThrownBy(() -> DeviceList.parseVision("cpu,gpu", 2)).hasMessage("--vision-devices lists one device per "
        + "vision worker, comma-separated: cpu, N or cuda:N (CUDA device N) or twin (the CUDA path on the CPU, for "
        + "tests). Given: \"cpu,gpu\", whose entry \"gpu\" is none of these");
    String model = Fixtures.tinyOwl2().toString();
    assertThat(local("--model", model, "--vision-workers", "2", "--vision-devices", "twin")).isEqualTo("owlery: error: "
        + "--vision-devices lists 1 device for 2 vision workers (--vision-workers); give one device per vision worker");
  }

  /** {@code owlery local ARGS} in this JVM, refused: its one line of stderr. */
  private static String local(String... args) {
    StringWriter err = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setErr(new PrintWriter(err, true));
    String[] all = new String[args.length + 1];
    all[0] = "local";
    System.arraycopy(args, 0, all, 1, args.length);

    int code = cli.execute(all);

    assertThat(code).as(err.toString()).isEqualTo(2);
    assertThat(err.toString().lines()).as(err.toString()).hasSize(1);
    return err.toString().strip();
  }
}
