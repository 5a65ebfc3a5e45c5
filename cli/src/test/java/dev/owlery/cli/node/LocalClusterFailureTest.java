package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import io.grpc.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Issue 4 acceptance 3, with real processes: a shard worker killed mid-generation ends the request
 * with UNAVAILABLE within 10 s naming the node, the group shows DOWN, and a shard worker started
 * afterwards restores service with no process restarted.
 */
class LocalClusterFailureTest {

  @Test
  void killedShardFailsTheRequestFastAndAReplacementRestoresService() {
    Path model = Fixtures.stories260k();
    StringWriter log = new StringWriter();
    GenerateRequest longRequest = GenerateRequest.newBuilder()
        .setPromptText("Once upon a time").setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(400).build();
    try (LocalCluster cluster = LocalCluster.start(model, 2, 0, 0, new PrintWriter(log, true), List.of("-Xmx512m"));
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(60)).build()) {
      cluster.awaitReady(0, Duration.ofSeconds(240));
      LocalCluster.NodeProcess victim = cluster.nodes().stream()
          .filter(n -> n.nodeId().equals("shard-1")).findFirst().orElseThrow();

      long killedAt;
      try (GenerationStream stream = client.generateStream(longRequest)) {
        assertThat(stream.hasNext()).isTrue();
        stream.next(); // generation is under way
        cluster.kill(victim);
        killedAt = System.nanoTime();
        assertThatThrownBy(() -> {
          while (stream.hasNext()) {
            stream.next();
          }
        }).isInstanceOfSatisfying(OwleryException.class, e -> {
          assertThat(e.code()).as(log.toString()).isEqualTo(Status.Code.UNAVAILABLE);
          assertThat(e.description()).contains("shard-1");
        });
      }
      assertThat(Duration.ofNanos(System.nanoTime() - killedAt)).isLessThan(Duration.ofSeconds(10));
      // The coordinator marks the group DOWN on its placement thread as it fails the request.
      await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
          assertThat(client.getClusterStatus().getGroups(0).getState()).isEqualTo(NodeState.NODE_STATE_DOWN));

      cluster.startShardWorker();
      cluster.awaitReady(0, Duration.ofSeconds(240));
      Completion after = client.generate(longRequest.toBuilder().setMaxNewTokens(8).build());

      assertThat(after.tokenIds()).hasSize(8);
      assertThat(cluster.nodes().stream().filter(n -> !n.process().isAlive()).map(LocalCluster.NodeProcess::nodeId))
          .containsExactly("shard-1");
    }
  }
}
