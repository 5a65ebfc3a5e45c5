package dev.owlery.cli.node;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/** {@code owlery local --ready-file}: where a ready local cluster's nodes are, as JSON. */
final class ReadyFile {

  private ReadyFile() {}

  /**
   * Writes {@code {"coordinator": "HOST:PORT", "nodes": [{"role", "address", "metrics"}]}}
   * atomically, with {@code "tls_ca"} (the CA file clients trust) when the cluster runs TLS.
   */
  static void write(Path file, String coordinator, Path tlsCa, GetClusterStatusResponse status) {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("coordinator", coordinator);
    if (tlsCa != null) {
      root.put("tls_ca", tlsCa.toString());
    }
    ArrayNode list = root.putArray("nodes");
    for (NodeStatus n : status.getNodesList()) {
      list.addObject()
          .put("role", roleName(n.getRole()))
          .put("node_id", n.getNodeId())
          .put("address", n.getGrpcAddress())
          .put("metrics", n.getMetricsUrl());
    }
    try {
      Path parent = file.toAbsolutePath().getParent();
      Files.createDirectories(parent);
      Path tmp = Files.createTempFile(parent, ".ready", ".json");
      Files.writeString(tmp, root.toPrettyString() + "\n");
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the ready file " + file + ": " + e.getMessage(), e);
    }
  }

  private static String roleName(NodeRole role) {
    return switch (role) {
      case NODE_ROLE_COORDINATOR -> "coordinator";
      case NODE_ROLE_VISION_WORKER -> "vision-worker";
      case NODE_ROLE_SHARD_WORKER -> "shard-worker";
      case NODE_ROLE_UNSPECIFIED, UNRECOGNIZED -> role.name().toLowerCase(Locale.ROOT);
    };
  }
}
