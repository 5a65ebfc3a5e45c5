package dev.owlery.cli.node;

import dev.owlery.cluster.membership.AddressBlock;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.tls.ReloadingTls;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** Where a node listens and how it joins the cluster; the flags every role shares. */
public final class NodeOptions {

  @Option(names = "--node-id", required = true, description = "Unique node name in the cluster, e.g. shard-0.")
  String nodeId;

  @Option(names = "--host", defaultValue = "127.0.0.1",
      description = "Address to listen on and publish to the other nodes (default ${DEFAULT-VALUE}).")
  String host;

  @Option(names = "--port", defaultValue = "0", description = "gRPC port; 0 picks a free one (default ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--metrics-port", defaultValue = "0",
      description = "Port of the Prometheus /metrics endpoint; 0 picks a free one (default ${DEFAULT-VALUE}).")
  int metricsPort;

  @Option(names = "--cluster-port", defaultValue = "5701",
      description = "This node's Hazelcast member port (default ${DEFAULT-VALUE}).")
  int clusterPort;

  @Option(names = "--members", split = ",",
      description = "HOST:PORT of Hazelcast members to join through (TCP-IP join, multicast off); "
          + "e.g. the coordinator's --cluster-port.")
  List<String> members = new ArrayList<>();

  @Option(names = "--cluster-interface", paramLabel = "ADDRESS",
      description = "The address the Hazelcast member listens on (that interface only) and publishes; default: --host.")
  String clusterInterface;

  @Option(names = "--cluster-allow", split = ",", paramLabel = "CIDR",
      description = "Take Hazelcast connections only from these addresses or CIDR blocks, e.g. 10.0.0.0/8 (default: any; "
          + "docs/security.md).")
  List<String> clusterAllow = new ArrayList<>();

  @Option(names = "--cluster-name", defaultValue = "owlery",
      description = "Nodes with another cluster name are refused (default ${DEFAULT-VALUE}).")
  String clusterName;

  @Option(names = "--cluster-ca", paramLabel = "FILE",
      description = "With --node-cert and --node-key: mutual TLS on every link between nodes; only nodes with a "
          + "certificate this CA (PEM) signed are talked to (owlery certs writes one).")
  Path clusterCa;

  @Option(names = "--node-cert", paramLabel = "FILE", description = "This node's certificate (PEM) from the --cluster-ca.")
  Path nodeCert;

  @Option(names = "--node-key", paramLabel = "FILE", description = "The private key (PEM, PKCS#8) of --node-cert.")
  Path nodeKey;

  @Option(names = "--drain-timeout", defaultValue = "PT30S",
      description = "On SIGTERM: how long the node drains (stops taking work, lets work in flight finish or hands it "
          + "over) before it deregisters and exits (default ${DEFAULT-VALUE}).")
  Duration drainTimeout;

  @Option(names = "--parent-pid",
      description = "Stop this node when the process with this pid exits (owlery local passes its own pid).")
  Long parentPid;

  public String nodeId() {
    return nodeId;
  }

  public String host() {
    return host;
  }

  public int metricsPort() {
    return metricsPort;
  }

  /** The pid whose exit stops this node; null when the node runs on its own. */
  public Long parentPid() {
    return parentPid;
  }

  public MembershipConfig membership() {
    return MembershipConfig.of(clusterName, clusterInterface == null ? host : clusterInterface, clusterPort, members)
        .withAllowedSources(clusterAllow.stream().map(AddressBlock::parse).toList());
  }

  /**
   * The cluster's mutual TLS from {@code --cluster-ca}, {@code --node-cert} and {@code
   * --node-key}, the files reread when they change; null when none is given (plaintext links).
   * The caller closes it.
   *
   * @throws IllegalArgumentException when only some of the three are given, or a file cannot be read
   */
  public ReloadingTls openClusterTls() {
    if (clusterCa == null && nodeCert == null && nodeKey == null) {
      return null;
    }
    if (clusterCa == null || nodeCert == null || nodeKey == null) {
      throw new IllegalArgumentException("--cluster-ca, --node-cert and --node-key go together; give all three or none");
    }
    return ReloadingTls.open(nodeCert, nodeKey, clusterCa);
  }

  /** How long the node drains on SIGTERM. */
  public Duration drainTimeout() {
    return drainTimeout;
  }

  /** The gRPC server, letting calls in flight finish for up to the drain timeout when it stops. */
  public GrpcServerConfig grpc() {
    return GrpcServerConfig.of(host, port).withShutdownGrace(drainTimeout);
  }
}
