package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.membership.AddressBlock;
import dev.owlery.cluster.membership.MembershipConfig;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The options every node shares reach the membership and TLS configuration. */
class NodeOptionsTest {

  private static NodeOptions parsed(String... args) {
    ShardWorkerCommand command = new ShardWorkerCommand();
    new CommandLine(command).parseArgs(args);
    return command.node;
  }

  @Test
  void theClusterInterfaceAndAllowedSourcesReachTheMembership() {
    MembershipConfig membership = parsed("--node-id", "shard-0", "--host", "10.1.2.3", "--cluster-interface",
        "192.168.7.3", "--cluster-allow", "192.168.7.0/24,10.9.9.9").membership();

    assertThat(membership.bindHost()).isEqualTo("192.168.7.3");
    assertThat(membership.allowedSources()).containsExactly(AddressBlock.parse("192.168.7.0/24"),
        AddressBlock.parse("10.9.9.9/32"));
  }

  @Test
  void withoutThemTheMemberUsesTheHostAndTakesAnySource() {
    MembershipConfig membership = parsed("--node-id", "shard-0", "--host", "10.1.2.3").membership();

    assertThat(membership.bindHost()).isEqualTo("10.1.2.3");
    assertThat(membership.allowedSources()).isEqualTo(List.of());
    assertThat(parsed("--node-id", "shard-0").openClusterTls()).as("plaintext").isNull();
  }

  @Test
  void clusterTlsNeedsTheCaTheCertificateAndTheKey() {
    assertThatThrownBy(() -> parsed("--node-id", "shard-0", "--cluster-ca", "ca.pem").openClusterTls())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--cluster-ca, --node-cert and --node-key go together; give all three or none");
  }
}
