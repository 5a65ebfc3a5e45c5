package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cli.Owlery;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GetClusterStatusRequest;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.OwleryGrpc;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code owlery local} that cannot start says why in sentences, exits non-zero and leaves no child
 * process: a port taken by another coordinator or another program, a node exiting during start-up.
 */
class LocalClusterStartFailureTest {

  @Test
  void aClusterOnAPortWhereAnotherCoordinatorAnswersFailsAtOnceLeavingNoChild() throws Exception {
    Server other = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(new OtherCoordinator()).build().start();
    try {
      Set<Long> before = livingDescendants();
      StringWriter log = new StringWriter();

      // Past any check of the port: the ready check must tell the other coordinator from its own.
      assertThatThrownBy(() -> LocalCluster.start(Fixtures.stories260k(), 1, 0, other.getPort(), new PrintWriter(log, true),
          List.of("-Xmx256m")))
          .isInstanceOf(LocalClusterException.class)
          .hasMessage("port %d is already in use (another coordinator?); choose another with --port", other.getPort());
      assertThat(livingDescendants()).isEqualTo(before);
    } finally {
      other.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void owleryLocalOnAPortInUseSaysSoInOneLineAndStartsNothing() throws IOException {
    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      Set<Long> before = livingDescendants();

      Run run = owlery("local", "--model", Fixtures.stories260k().toString(), "--vision-workers", "0",
          "--port", String.valueOf(taken.getLocalPort()), "--ready-timeout", "PT60S");

      assertThat(run.exitCode()).as(run.err()).isEqualTo(1);
      assertThat(run.err()).isEqualTo(
          "owlery local: port %d is already in use (another coordinator?); choose another with --port%n".formatted(taken.getLocalPort()));
      assertThat(livingDescendants()).isEqualTo(before);
    }
  }

  @Test
  void aNodeExitingWhileStartingIsNamedWithItsStatusAndLastLines(@TempDir Path tmp) throws IOException {
    Path notAModel = Files.createDirectory(tmp.resolve("not-a-model"));
    Set<Long> before = livingDescendants();

    Run run = owlery("local", "--model", notAModel.toString(), "--vision-workers", "0");

    assertThat(run.exitCode()).as(run.err()).isEqualTo(1);
    List<String> lines = run.ownLines();
    assertThat(lines.getFirst()).matches(
        "owlery local: coordinator-\\p{XDigit}{8} \\(coordinator\\) exited with status 2 while starting; its last lines:");
    // The coordinator's own one-line error, indented under the headline; no stack trace.
    assertThat(lines.subList(1, lines.size())).singleElement().satisfies(line ->
        assertThat(line).startsWith("  owlery: error: ").contains(notAModel.toString()));
    assertThat(run.err()).doesNotContain("Exception", "\tat ");
    assertThat(livingDescendants()).isEqualTo(before);
  }

  /** A coordinator of another cluster: answers GetClusterStatus with itself. */
  private static final class OtherCoordinator extends OwleryGrpc.OwleryImplBase {
    @Override
    public void getClusterStatus(GetClusterStatusRequest request, StreamObserver<GetClusterStatusResponse> responses) {
      responses.onNext(GetClusterStatusResponse.newBuilder().addNodes(NodeStatus.newBuilder()
          .setNodeId("coordinator").setRole(NodeRole.NODE_ROLE_COORDINATOR).setState(NodeState.NODE_STATE_READY)).build());
      responses.onCompleted();
    }
  }

  /** An owlery run in this JVM; its children's output is in {@code err} too, each line prefixed by "[node]". */
  private record Run(int exitCode, String err) {
    /** The lines owlery itself wrote to stderr. */
    List<String> ownLines() {
      return err.lines().filter(line -> !line.startsWith("[")).toList();
    }
  }

  private static Run owlery(String... args) {
    StringWriter err = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args);
    return new Run(code, err.toString());
  }

  private static Set<Long> livingDescendants() {
    return ProcessHandle.current().descendants().filter(ProcessHandle::isAlive).map(ProcessHandle::pid)
        .collect(Collectors.toSet());
  }
}
