package dev.owlery.cluster.membership;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What the membership channel trusts (docs/security.md), on real Hazelcast members on loopback: a
 * member listens on its interface only, and takes connections only from its allowed sources.
 */
class MembershipIsolationTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static MembershipConfig member(String clusterName, int port, List<Integer> seeds) {
    return MembershipConfig.of(clusterName, "127.0.0.1", port, seeds.stream().map(p -> "127.0.0.1:" + p).toList());
  }

  @Test
  void aMemberListensOnItsInterfaceOnly() throws IOException {
    int port = LoopbackCluster.freePorts(1).getFirst();
    cleanup.register(ClusterMember.start(member(LoopbackCluster.freshClusterName(), port, List.of(port))));

    // 127.0.0.2 is loopback too: a member bound to the wildcard would answer there.
    try (Socket socket = new Socket()) {
      assertThatThrownBy(() -> socket.connect(new InetSocketAddress("127.0.0.2", port), 2000))
          .isInstanceOf(ConnectException.class);
    }
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 2000);
      assertThat(socket.isConnected()).isTrue();
    }
  }

  @Test
  void aMemberConnectingFromOutsideTheAllowedSourcesIsRefused() {
    String clusterName = LoopbackCluster.freshClusterName();
    List<Integer> ports = LoopbackCluster.freePorts(3);
    // The seed takes members from 127.0.0.1 only at first: the second member, from there too, joins.
    ClusterMember seed = cleanup.register(ClusterMember.start(member(clusterName, ports.get(0), List.of(ports.get(0)))
        .withAllowedSources(List.of(AddressBlock.parse("127.0.0.1/32")))));
    ClusterMember allowed = cleanup.register(ClusterMember.start(member(clusterName, ports.get(1), List.of(ports.get(0)))));
    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(seed.members()).hasSize(2));

    ClusterMember guarded = cleanup.register(ClusterMember.start(member(clusterName, ports.get(2), List.of(ports.get(2)))
        .withAllowedSources(List.of(AddressBlock.parse("10.0.0.0/8")))));
    // A socket from 127.0.0.1 is closed by the guarded member before it carries anything.
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", ports.get(2)), 2000);
      socket.setSoTimeout(5000);
      socket.getOutputStream().write("HZC".getBytes(StandardCharsets.US_ASCII));
      assertThat(socket.getInputStream().read()).as("end of stream: the member closed the connection").isEqualTo(-1);
    } catch (IOException closed) {
      // a reset says the same
    }
    assertThat(guarded.members()).hasSize(1);
    assertThat(allowed.members()).hasSize(2);

    // A member joining through the guarded one from 127.0.0.1 is refused: it starts as a cluster of its own.
    List<Integer> outsiderPort = LoopbackCluster.freePorts(1);
    ClusterMember outsider = cleanup.register(ClusterMember.start(
        member(clusterName, outsiderPort.getFirst(), List.of(ports.get(2)))));
    assertThat(outsider.members()).hasSize(1);
    assertThat(guarded.members()).hasSize(1);
  }

  @Test
  void anAddressBlockHoldsTheAddressesOfItsPrefix() throws IOException {
    AddressBlock block = AddressBlock.parse("10.1.0.0/16");

    assertThat(block.contains(InetAddress.getByName("10.1.255.7"))).isTrue();
    assertThat(block.contains(InetAddress.getByName("10.2.0.1"))).isFalse();
    assertThat(AddressBlock.parse("10.1.2.3").contains(InetAddress.getByName("10.1.2.3"))).isTrue();
    assertThat(AddressBlock.parse("fd00::/8").contains(InetAddress.getByName("fd12::1"))).isTrue();
    assertThatThrownBy(() -> AddressBlock.parse("owlery.internal/8")).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'owlery.internal/8' is not an IP address or a CIDR block");
  }
}
