package dev.owlery.coordinator.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.cuda.plan.SliceFootprint;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeDevice;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import dev.owlery.shard.node.ShardWorkerNode;
import dev.owlery.shard.node.ShardWorkerNodeConfig;
import dev.owlery.shard.worker.ShardDevice;
import dev.owlery.shard.worker.ShardWorkerConfig;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Shard workers serving from a device register it (name, memory, their share), and the
 * coordinator sizes the group's KV pool from the device's memory plan, not from the JVM heap; the
 * group then serves from the devices (two shards, each on its own CPU twin of a CUDA device).
 */
class DeviceShardSizingTest {

  private static final int BLOCK_SIZE = 16;
  private static final int MAX_NUM_SEQUENCES = 4;
  private static final int MAX_NUM_TOKENS = 64;
  private static final double UTILIZATION = 0.5;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void theGroupsKvPoolIsWhatTheShardsDevicePlansAllow() {
    LlamaConfig text = ModelConfig.load(Fixtures.tinyOwl2()).text();
    // a twin device whose share holds each rank's slice and 40 blocks (less than the 64 a full batch of 4 would take)
    SliceFootprint rank0 = footprint(text, 0);
    long total = (long) ((rank0.weightBytes() + rank0.workspaceBytes()
        + 40.5 * BLOCK_SIZE * rank0.kvBytesPerPosition()) / UTILIZATION);
    ShardDevice twin = ShardDevice.twin(total, UTILIZATION);
    int expectedBlocks = Math.min(plan(twin, footprint(text, 0)), plan(twin, footprint(text, 1)));
    assertThat(expectedBlocks).isBetween(39, 40);
    ShardWorkerLauncher onTwins = (nodeId, modelDir, membership) -> ShardWorkerNode.start(
        ShardWorkerNodeConfig.of("127.0.0.1", 0, 0, membership).withNodeId(nodeId).withComputeThreads(1)
            .withWorker(ShardWorkerConfig.defaults().withDevice(twin)));

    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.tinyOwl2(), onTwins, 2,
        config -> config.withPlacement(config.placement().withBatch(MAX_NUM_SEQUENCES, MAX_NUM_TOKENS)));
    ShardGroupStatus group = owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(60));

    assertThat(group.getNumKvBlocks()).isEqualTo(expectedBlocks);
    List<NodeStatus> shards = owlery.client().getClusterStatus().getNodesList().stream()
        .filter(node -> node.getNodeId().startsWith("shard-")).toList();
    assertThat(shards).hasSize(2).allSatisfy(node -> assertThat(node.getDevice()).isEqualTo(NodeDevice.newBuilder()
        .setDevice("cuda-twin").setName("cpu kernel twins").setTotalBytes(total)
        .setBudgetBytes((long) Math.floor(UTILIZATION * total)).build()));
    var completion = owlery.client().generate(GenerateRequest.newBuilder().setPromptText("USER: Hello. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setTemperature(0).setMaxNewTokens(6).build());
    assertThat(completion.tokenIds()).hasSize(6);
  }

  private static SliceFootprint footprint(LlamaConfig text, int rank) {
    return SliceFootprint.of(text, new TensorParallelRank(rank, 2), DType.F32, KvCacheDtype.F16, MAX_NUM_TOKENS);
  }

  private static int plan(ShardDevice device, SliceFootprint footprint) {
    return DeviceMemoryPlan.of(device.memory(), UTILIZATION, footprint, BLOCK_SIZE).numKvBlocks();
  }
}
