package dev.owlery.shard.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A shard worker node joins a real Hazelcast cluster on loopback, registers, serves, and leaves. */
class ShardWorkerNodeTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void registersReadyWithItsAddressesAndDisappearsWhenClosed() throws Exception {
    ClusterMember seed = LoopbackCluster.start(1, cleanup).getFirst();
    NodeRegistry registry = cleanup.register(new NodeRegistry(seed));
    MembershipConfig membership = MembershipConfig.of(seed.config().clusterName(), "127.0.0.1",
        LoopbackCluster.freePorts(1).getFirst(), List.of(seed.config().address()));
    ShardWorkerNode node = ShardWorkerNode.start(
        ShardWorkerNodeConfig.of("127.0.0.1", 0, 0, membership).withComputeThreads(1));
    cleanup.register(node); // closing twice is harmless; the test closes it first

    await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
        assertThat(registry.nodes(NodeRole.SHARD_WORKER)).extracting(NodeRecord::nodeId).containsExactly(node.nodeId()));
    NodeRecord record = registry.find(node.nodeId()).orElseThrow();
    assertThat(record.state()).isEqualTo(NodeState.READY);
    assertThat(record.assignment()).isNull();
    assertThat(record.grpcAddress()).isEqualTo("127.0.0.1:" + node.server().port());

    ManagedChannel channel = cleanup.register(NettyChannelBuilder.forTarget(record.grpcAddress()).usePlaintext().build());
    assertThat(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService("owlery.internal.v1.ShardWorker").build()).getStatus())
        .isEqualTo(ServingStatus.SERVING);
    HttpResponse<String> scrape = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(record.metricsUrl())).timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(scrape.statusCode()).isEqualTo(200);
    assertThat(scrape.body()).contains("role=\"shard-worker\"");

    node.close();
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
        assertThat(registry.nodes(NodeRole.SHARD_WORKER)).isEmpty());
    assertThat(seed.members()).hasSize(1);
  }
}
