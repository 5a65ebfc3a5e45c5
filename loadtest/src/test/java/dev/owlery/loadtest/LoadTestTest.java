package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The standalone {@code loadtest} command against a real gRPC server implementing owlery.v1. */
class LoadTestTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private QueueingOwlery server;

  record Run(int exitCode, String out, String err) {
    static Run of(String... args) {
      StringWriter out = new StringWriter();
      StringWriter err = new StringWriter();
      var cli = LoadTest.commandLine();
      cli.setOut(new PrintWriter(out, true));
      cli.setErr(new PrintWriter(err, true));
      int code = cli.execute(args);
      return new Run(code, out.toString(), err.toString());
    }
  }

  @BeforeEach
  void startServer() throws IOException {
    server = new QueueingOwlery(0, 0);
  }

  @AfterEach
  void stopServer() throws InterruptedException {
    server.close();
  }

  @Test
  void closedLoopLevelsCountEveryRequestAndItsTokens() throws IOException {
    Run run = Run.of("--server", server.address(), "--prompt-ids", "1,2,3", "--concurrency", "1,3",
        "--requests", "6", "--warmup", "2", "--max-new-tokens", "5", "--output", "json");

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode levels = JSON.readTree(run.out()).get("levels");
    assertThat(levels).hasSize(2);
    assertThat(levels.get(1).get("concurrency").asInt()).isEqualTo(3);
    assertThat(levels.get(1).get("generated_tokens").asInt()).isEqualTo(30);
    // 2 warm-up requests, then 6 per level.
    assertThat(server.received).hasSize(14);
  }

  @Test
  void badOptionsGetOneLine() {
    Run zeroLevel = Run.of("--server", server.address(), "--prompt", "Hi", "--concurrency", "0");
    Run badOutput = Run.of("--server", server.address(), "--prompt", "Hi", "--output", "yaml");

    assertThat(zeroLevel.exitCode()).isEqualTo(2);
    assertThat(zeroLevel.err()).isEqualTo("loadtest: error: --concurrency levels must be >= 1, got 0\n");
    assertThat(badOutput.err()).isEqualTo("loadtest: error: --output must be text or json, got 'yaml'\n");
  }
}
