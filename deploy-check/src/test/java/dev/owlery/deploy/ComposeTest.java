package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.cli.node.ShardWorkerCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.ParseResult;
import tools.jackson.databind.JsonNode;

/** deploy/docker/compose.yaml: its nodes' flags, addresses and seeds, and what Prometheus scrapes. */
class ComposeTest {

  private static final Path DOCKER = DeployFiles.deploy("docker");
  private final JsonNode compose = DeployFiles.yaml(DOCKER.resolve("compose.yaml"));

  /** The owlery nodes (services running a node role), by service name. */
  private Map<String, ParseResult> nodes() {
    Map<String, ParseResult> nodes = new LinkedHashMap<>();
    for (var service : compose.path("services").properties()) {
      List<String> command = new ArrayList<>();
      service.getValue().path("command").forEach(arg -> command.add(arg.asString()));
      if (!command.isEmpty() && NodeCommands.ROLES.containsKey(command.getFirst())) {
        ParseResult parsed = NodeCommands.parse(command);
        assertThat(NodeCommands.commandClass(parsed)).isEqualTo(NodeCommands.ROLES.get(command.getFirst()));
        nodes.put(service.getKey(), parsed);
      }
    }
    return nodes;
  }

  @Test
  void everyNodeListensOnItsOwnAddressAndJoinsThroughNodesByName() {
    Map<String, ParseResult> nodes = nodes();
    assertThat(nodes.keySet()).containsExactly("coordinator", "shard-0", "shard-1", "shard-standby", "vision-0");
    Set<String> nodeIds = new HashSet<>();
    for (var node : nodes.entrySet()) {
      JsonNode service = compose.path("services").path(node.getKey());
      assertThat((String) NodeCommands.option(node.getValue(), "--host")).as("%s's --host", node.getKey())
          .isEqualTo(service.path("networks").path("owlery").path("ipv4_address").asString())
          .startsWith("172.28.0.");
      assertThat(nodeIds.add(NodeCommands.option(node.getValue(), "--node-id"))).isTrue();
      List<String> members = NodeCommands.option(node.getValue(), "--members");
      assertThat(members).isNotEmpty();
      for (String member : members) {
        String[] hostPort = member.split(":");
        assertThat(nodes).as("%s's member %s is a node of this file", node.getKey(), member).containsKey(hostPort[0]);
        assertThat((Integer) NodeCommands.option(nodes.get(hostPort[0]), "--cluster-port")).isEqualTo(Integer.parseInt(hostPort[1]));
      }
      assertThat(service.path("volumes").get(0).asString()).endsWith(":/models/owl2:ro");
    }
    assertThat(nodes.get("shard-standby").commandSpec().userObject()).isInstanceOf(ShardWorkerCommand.class);
    int groupSize = NodeCommands.option(nodes.get("coordinator"), "--group-size");
    assertThat(nodes.values().stream().filter(p -> NodeCommands.commandClass(p) == ShardWorkerCommand.class))
        .as("one group of shard workers and one standby").hasSize(groupSize + 1);
    assertThat(NodeCommands.option(nodes.get("coordinator"), "--model").toString()).isEqualTo("/models/owl2");
  }

  @Test
  void theClientServiceRunsAnOwleryCommandAgainstTheCoordinator() {
    List<String> command = new ArrayList<>();
    compose.path("services").path("client").path("command").forEach(arg -> command.add(arg.asString()));
    ParseResult parsed = NodeCommands.parse(command);
    assertThat((String) NodeCommands.option(parsed, "--server"))
        .isEqualTo("coordinator:" + NodeCommands.<Integer>option(nodes().get("coordinator"), "--port"));
  }

  @Test
  void prometheusScrapesEveryNodeOnItsMetricsPortOnce() {
    JsonNode prometheus = DeployFiles.yaml(DOCKER.resolve("prometheus.yml"));
    List<String> targets = new ArrayList<>();
    for (JsonNode job : prometheus.path("scrape_configs")) {
      for (JsonNode config : job.path("static_configs")) {
        config.path("targets").forEach(target -> targets.add(target.asString()));
      }
    }
    List<String> expected = new ArrayList<>();
    nodes().forEach((name, parsed) -> expected.add(name + ":" + NodeCommands.<Integer>option(parsed, "--metrics-port")));
    assertThat(targets).containsExactlyInAnyOrderElementsOf(expected);
  }

  @Test
  void everyFileTheServicesMountExists() {
    int mounts = 0;
    for (var service : compose.path("services").properties()) {
      for (JsonNode volume : service.getValue().path("volumes")) {
        String source = volume.asString().split(":")[0];
        if (source.startsWith(".")) {
          assertThat(Files.exists(DOCKER.resolve(source))).as("%s mounts %s", service.getKey(), source).isTrue();
          mounts++;
        }
      }
    }
    assertThat(mounts).isEqualTo(5);
    assertThat(DOCKER.resolve(compose.path("services").path("coordinator").path("build").path("context").asString())
            .resolve(compose.path("services").path("coordinator").path("build").path("dockerfile").asString()).normalize())
        .isEqualTo(DOCKER.resolve("Dockerfile").normalize());
  }
}
