package dev.owlery.cli.node;

import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.CoordinatorNode;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery coordinator}: the public endpoint, scheduler and placement authority. */
@Command(name = "coordinator", mixinStandardHelpOptions = true,
    description = "Run the coordinator (public gRPC API, placement of shard groups, scheduling) until interrupted.")
public final class CoordinatorCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Mixin
  NodeOptions node;

  @Option(names = "--model", required = true, description = "The model directory (the shard workers load the same path).")
  Path model;

  @Option(names = "--group-size", defaultValue = "1", description = "Shard workers per tensor-parallel group (default ${DEFAULT-VALUE}).")
  int groupSize;

  @Override
  public Integer call() {
    NodeRunner.quietClusterLogging();
    CoordinatorConfig defaults = CoordinatorConfig.of(node.nodeId(), model, node.membership(), node.grpc(), node.host(), groupSize);
    CoordinatorConfig config = defaults.withMetricsPort(node.metricsPort());
    CoordinatorNode coordinator = CoordinatorNode.start(config);
    return NodeRunner.serveUntilInterrupted(coordinator,
        "owlery coordinator: %s serving %s on %s (groups of %d shard workers; metrics on port %d)"
            .formatted(coordinator.nodeId(), model, coordinator.grpcAddress(), groupSize, coordinator.metricsPort()),
        spec.commandLine().getErr());
  }
}
