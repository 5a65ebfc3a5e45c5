package dev.owlery.cli.node;

import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.NodeStatus;

/** What the coordinator's cluster status says about one node, for the process-level tests. */
final class RegisteredNodes {

  private RegisteredNodes() {}

  /** The gRPC address {@code nodeId} is registered with ("" when it is not). */
  static String address(OwleryClient client, String nodeId) {
    return client.getClusterStatus().getNodesList().stream().filter(node -> node.getNodeId().equals(nodeId))
        .map(NodeStatus::getGrpcAddress).findFirst().orElse("");
  }
}
