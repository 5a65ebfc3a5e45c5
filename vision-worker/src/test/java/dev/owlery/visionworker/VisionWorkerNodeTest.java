package dev.owlery.visionworker;

import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.rpc.GrpcChannelConfig;
import dev.owlery.cluster.rpc.GrpcChannels;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.onednn.testing.OneDnnTesting;
import dev.owlery.engine.testing.Fixtures;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** A real vision worker node on loopback: registry record, health, metrics, and leaving on close. */
class VisionWorkerNodeTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @ParameterizedTest
  @EnumSource(HostKernels.class)
  void registersReadyServesHealthAndMetricsAndDeregistersOnClose(HostKernels kernels) throws Exception {
    if (kernels == HostKernels.ONEDNN_BF16) {
      OneDnnTesting.library();
    }
    Path dir = Fixtures.tinyOwl2();
    String clusterName = LoopbackCluster.freshClusterName();
    List<Integer> ports = LoopbackCluster.freePorts(2);
    List<String> members = ports.stream().map(port -> "127.0.0.1:" + port).toList();
    // The watcher lists only itself so it forms the cluster at once; the node joins through it.
    ClusterMember watcher =
        ClusterMember.start(MembershipConfig.of(clusterName, "127.0.0.1", ports.get(0), members.subList(0, 1)));
    cleanup.onCleanup(watcher::terminate);
    NodeRegistry registry = cleanup.register(new NodeRegistry(watcher));

    VisionWorkerNode node = VisionWorkerNode.start(VisionWorkerConfig.of("vision-0", dir,
        MembershipConfig.of(clusterName, "127.0.0.1", ports.get(1), members), GrpcServerConfig.loopback(), "127.0.0.1")
        .withHostKernels(kernels));
    try {
      assertThat(node.kernelsName()).startsWith(kernels == HostKernels.VECTOR ? "vector-" : "onednn-bf16 (oneDNN ");
      NodeRecord record = registry.find("vision-0").orElseThrow();
      assertThat(record.role()).isEqualTo(NodeRole.VISION_WORKER);
      assertThat(record.state()).isEqualTo(NodeState.READY);
      assertThat(record.grpcAddress()).isEqualTo("127.0.0.1:" + node.grpcPort());

      ManagedChannel channel = cleanup.register(GrpcChannels.forTarget(record.grpcAddress(), GrpcChannelConfig.defaults()));
      ServingStatus status = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService("owlery.internal.v1.VisionWorker").build()).getStatus();
      assertThat(status).isEqualTo(ServingStatus.SERVING);

      HttpResponse<String> scrape = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create(record.metricsUrl())).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(scrape.statusCode()).isEqualTo(200);
      assertThat(scrape.body()).contains("owlery_vision_images_total").contains("node=\"vision-0\"");
    } finally {
      node.close();
    }
    await().atMost(ofSeconds(10)).untilAsserted(() -> assertThat(registry.find("vision-0")).isEmpty());
  }

  @Test
  void theOneDnnKernelsAreForTheHostOnly() {
    VisionWorkerConfig onHost = VisionWorkerConfig.of("vision-0", Fixtures.tinyOwl2(),
        MembershipConfig.of("c", "127.0.0.1", 5701, List.of("127.0.0.1:5701")), GrpcServerConfig.loopback(), "127.0.0.1")
        .withHostKernels(HostKernels.ONEDNN_BF16);
    assertThat(onHost.hostKernels()).isEqualTo(HostKernels.ONEDNN_BF16);
    assertThatThrownBy(() -> new VisionWorkerConfig(onHost.nodeId(), onHost.modelDir(), onHost.membership(),
        onHost.grpc(), onHost.advertisedHost(), 0, 8, 1 << 20, 1, 16, onHost.weights(), new DeviceSpec.CudaTwin(),
        HostKernels.ONEDNN_BF16, 8, 0.9))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--kernels onednn-bf16 runs the tower on the host; it cannot go with --device cuda-twin");
    assertThat(HostKernels.parse("onednn-BF16")).isEqualTo(HostKernels.ONEDNN_BF16);
    assertThatThrownBy(() -> HostKernels.parse("amx"))
        .hasMessage("kernels must be one of vector, onednn-bf16, got \"amx\"");
  }
}
