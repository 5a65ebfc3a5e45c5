package dev.owlery.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeDevice;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.SchedulerStatus;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code owlery status}: a coordinator's GetClusterStatus — shard groups, nodes, queue — as tables or JSON. */
@Command(name = "status", mixinStandardHelpOptions = true,
    description = "Show a running cluster: shard groups (state, ranks, KV blocks, queue), nodes, the scheduler.")
public final class StatusCommand implements Callable<Integer> {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Spec
  CommandSpec spec;

  @Mixin
  ServerQuery query;

  @Override
  public Integer call() {
    boolean json = query.json();
    GetClusterStatusResponse status;
    try (OwleryClient client = query.client()) {
      status = client.getClusterStatus();
    }
    PrintWriter out = spec.commandLine().getOut();
    out.print(json ? json(status) + "\n" : table(status));
    out.flush();
    return 0;
  }

  /** A table of the shard groups, one of the nodes, and the scheduler's counts. */
  static String table(GetClusterStatusResponse status) {
    TextTable groups = new TextTable("GROUP", "MODEL", "STATE", "RANKS", "KV_BLOCKS_USED", "KV_BLOCKS_FREE", "WAITING",
        "RUNNING");
    for (ShardGroupStatus group : status.getGroupsList()) {
      List<String> ranks = new ArrayList<>();
      for (int rank = 0; rank < group.getNodeIdsCount(); rank++) {
        String node = group.getNodeIds(rank);
        ranks.add(rank + ":" + (node.isEmpty() ? "(vacant)" : node));
      }
      groups.row(group.getGroupId(), group.getModel(), state(group.getState()), String.join(" ", ranks),
          group.getNumKvBlocks() - group.getNumFreeKvBlocks(), group.getNumFreeKvBlocks(),
          group.getNumWaitingSequences(), group.getNumRunningSequences());
    }
    TextTable nodes = new TextTable("NODE", "ROLE", "STATE", "ADDRESS", "GROUP", "RANK", "DEVICE", "METRICS");
    for (NodeStatus node : status.getNodesList()) {
      boolean placed = !node.getGroupId().isEmpty();
      nodes.row(node.getNodeId(), role(node.getRole()), state(node.getState()), node.getGrpcAddress(),
          placed ? node.getGroupId() : "-", placed ? node.getRank() : "-", device(node), node.getMetricsUrl());
    }
    SchedulerStatus scheduler = status.getScheduler();
    return (status.getGroupsCount() == 0 ? "no shard group has been formed yet\n" : groups.toString()) + "\n" + nodes
        + "\nscheduler: %d waiting, %d running\n".formatted(scheduler.getNumWaitingRequests(),
        scheduler.getNumRunningSequences());
  }

  /**
   * {@code {"groups": [{"group_id", "model", "state", "world_size", "ranks": [{"rank", "node_id"}],
   * "kv_blocks", "kv_blocks_used", "kv_blocks_free", "waiting", "running"}], "nodes": [{"node_id",
   * "role", "state", "address", "metrics_url", "group_id", "rank", "device": {"device", "name",
   * "total_bytes", "budget_bytes"}}], "scheduler": {"waiting", "running"}}}; a vacant rank has node_id
   * null, a node outside a group group_id and rank null, a node on the CPU device null.
   */
  static String json(GetClusterStatusResponse status) {
    ObjectNode root = JSON.createObjectNode();
    ArrayNode groups = root.putArray("groups");
    for (ShardGroupStatus group : status.getGroupsList()) {
      ObjectNode g = groups.addObject();
      g.put("group_id", group.getGroupId());
      g.put("model", group.getModel());
      g.put("state", state(group.getState()));
      g.put("world_size", group.getWorldSize());
      ArrayNode ranks = g.putArray("ranks");
      for (int rank = 0; rank < group.getNodeIdsCount(); rank++) {
        String node = group.getNodeIds(rank);
        ranks.addObject().put("rank", rank).put("node_id", node.isEmpty() ? null : node);
      }
      g.put("kv_blocks", group.getNumKvBlocks());
      g.put("kv_blocks_used", group.getNumKvBlocks() - group.getNumFreeKvBlocks());
      g.put("kv_blocks_free", group.getNumFreeKvBlocks());
      g.put("waiting", group.getNumWaitingSequences());
      g.put("running", group.getNumRunningSequences());
    }
    ArrayNode nodes = root.putArray("nodes");
    for (NodeStatus node : status.getNodesList()) {
      boolean placed = !node.getGroupId().isEmpty();
      ObjectNode n = nodes.addObject();
      n.put("node_id", node.getNodeId());
      n.put("role", role(node.getRole()));
      n.put("state", state(node.getState()));
      n.put("address", node.getGrpcAddress());
      n.put("metrics_url", node.getMetricsUrl());
      n.put("group_id", placed ? node.getGroupId() : null);
      if (placed) {
        n.put("rank", node.getRank());
      } else {
        n.putNull("rank");
      }
      if (node.hasDevice()) {
        n.putObject("device").put("device", node.getDevice().getDevice()).put("name", node.getDevice().getName())
            .put("total_bytes", node.getDevice().getTotalBytes()).put("budget_bytes", node.getDevice().getBudgetBytes());
      } else {
        n.putNull("device");
      }
    }
    root.putObject("scheduler").put("waiting", status.getScheduler().getNumWaitingRequests())
        .put("running", status.getScheduler().getNumRunningSequences());
    return root.toString();
  }

  /**
   * A shard's device as {@code cuda:0 NVIDIA H200, 126.4 of 140.4 GiB}: its name and the memory the
   * shard may use of its total; {@code -} on the CPU.
   */
  static String device(NodeStatus node) {
    if (!node.hasDevice()) {
      return "-";
    }
    NodeDevice device = node.getDevice();
    return String.format(Locale.ROOT, "%s %s, %.1f of %.1f GiB", device.getDevice(), device.getName(),
        device.getBudgetBytes() / (double) (1L << 30), device.getTotalBytes() / (double) (1L << 30));
  }

  /** READY, STARTING, DRAINING, DOWN. */
  static String state(NodeState state) {
    return state.name().substring("NODE_STATE_".length());
  }

  /** coordinator, vision-worker, shard-worker: the command that starts it. */
  static String role(NodeRole role) {
    return role.name().substring("NODE_ROLE_".length()).toLowerCase(Locale.ROOT).replace('_', '-');
  }
}
