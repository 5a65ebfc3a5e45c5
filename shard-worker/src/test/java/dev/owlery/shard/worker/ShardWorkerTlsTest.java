package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.util.concurrent.ListenableFuture;
import dev.owlery.cluster.rpc.GrpcChannelConfig;
import dev.owlery.cluster.rpc.GrpcChannels;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.tls.DevCertificates;
import dev.owlery.cluster.tls.ReloadingTls;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.KvCacheDtype;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.shard.collective.CollectiveConfig;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Shard workers on the cluster's mutual TLS, as real Netty servers on 127.0.0.1:0, with the test
 * as their coordinator: a group forms between nodes of the cluster CA; a node whose certificate
 * another CA signed can neither be placed nor open a peer stream.
 */
class ShardWorkerTlsTest {

  private static final ScalarKernels KERNELS = new ScalarKernels();
  /** Forming a group gives up this soon when a peer never handshakes. */
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(2);

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @TempDir Path cluster;
  @TempDir Path foreign;

  private static Path model;

  @BeforeAll
  static void fixture() {
    model = Fixtures.stories260k();
  }

  @BeforeEach
  void writeCertificates() {
    DevCertificates.write(cluster, List.of("coordinator", "shard-0", "shard-1"), List.of(), Duration.ofDays(1));
    DevCertificates.write(foreign, List.of("coordinator", "shard-1"), List.of(), Duration.ofDays(1));
  }

  private ReloadingTls tls(Path dir, String node) {
    return cleanup.register(ReloadingTls.open(DevCertificates.certificate(dir, node), DevCertificates.key(dir, node),
        DevCertificates.caCertificate(dir)));
  }

  /** A shard worker serving, and opening its peer streams, with {@code node}'s certificate from {@code dir}. */
  private String shardWorker(Path dir, String node) {
    ReloadingTls tls = tls(dir, node);
    CollectiveConfig collective = CollectiveConfig.defaults().withConnectTimeout(CONNECT_TIMEOUT);
    ShardWorkerConfig config = ShardWorkerConfig.defaults().withCollective(
        collective.withChannel(collective.channel().withCredentials(tls.channelCredentials())));
    ShardWorkerServer server = cleanup.register(ShardWorkerServer.netty(
        GrpcServerConfig.loopback().withCredentials(tls.serverCredentials()), config, KERNELS, new SimpleMeterRegistry()))
        .start();
    return "127.0.0.1:" + server.port();
  }

  /** LoadSlice sent to {@code addresses.get(rank)} by a coordinator with {@code coordinator}'s credentials. */
  private ListenableFuture<LoadSliceResponse> loadSlice(ReloadingTls coordinator, List<String> addresses, int rank) {
    var channel = cleanup.register(GrpcChannels.forTarget(addresses.get(rank),
        GrpcChannelConfig.defaults().withCredentials(coordinator.channelCredentials())));
    return ShardWorkerGrpc.newFutureStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS).loadSlice(
        LoadSliceRequest.newBuilder().setModelDir(model.toString()).setRank(rank).setWorldSize(addresses.size())
            .setGroupId("tls-group").addAllPeerAddresses(addresses).setMaxNumTokens(16).setMaxNumSequences(1)
            .setNumKvBlocks(4).setBlockSizeTokens(16).setKvCacheDtype(KvCacheDtype.KV_CACHE_DTYPE_F16).build());
  }

  private static Status statusOf(ListenableFuture<?> call) throws InterruptedException {
    try {
      call.get(30, TimeUnit.SECONDS);
      return Status.OK;
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("LoadSlice neither failed nor finished within 30 s", e);
    }
  }

  @Test
  void aGroupFormsOverMutualTls() throws Exception {
    List<String> addresses = List.of(shardWorker(cluster, "shard-0"), shardWorker(cluster, "shard-1"));
    ReloadingTls coordinator = tls(cluster, "coordinator");

    var rank0 = loadSlice(coordinator, addresses, 0);
    var rank1 = loadSlice(coordinator, addresses, 1);

    assertThat(statusOf(rank0).getCode()).isEqualTo(Status.Code.OK);
    assertThat(statusOf(rank1).getCode()).isEqualTo(Status.Code.OK);
  }

  @Test
  void theCoordinatorCannotPlaceAShardWorkerWithAForeignCertificate() throws Exception {
    List<String> addresses = List.of(shardWorker(cluster, "shard-0"), shardWorker(foreign, "shard-1"));

    Status placed = statusOf(loadSlice(tls(cluster, "coordinator"), addresses, 1));

    assertThat(placed.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(placed.getCause()).hasStackTraceContaining("SSLHandshakeException");
  }

  @Test
  void aShardWorkerWithAForeignCertificateCannotOpenAPeerStream() throws Exception {
    // The foreign node is told (by a coordinator of its own CA) to form a group with a cluster node,
    // and the cluster node (by the cluster's coordinator) to wait for it: neither stream is accepted.
    List<String> addresses = List.of(shardWorker(foreign, "shard-1"), shardWorker(cluster, "shard-0"));

    var intruder = loadSlice(tls(foreign, "coordinator"), addresses, 0);
    var member = loadSlice(tls(cluster, "coordinator"), addresses, 1);

    Status intruderStatus = statusOf(intruder);
    Status memberStatus = statusOf(member);
    assertThat(intruderStatus.getCode()).isNotEqualTo(Status.Code.OK);
    assertThat(intruderStatus.getDescription()).contains("peer");
    assertThat(memberStatus.getCode()).isNotEqualTo(Status.Code.OK);
    assertThat(memberStatus.getDescription()).contains("no handshake from peer");
  }
}
