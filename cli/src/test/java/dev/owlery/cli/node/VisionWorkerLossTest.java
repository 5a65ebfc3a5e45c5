package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 13 acceptance (c) with real processes: a tiny-owl2 cluster's vision worker killed with
 * SIGKILL while the images of {@value #NUM_REQUESTS} concurrent requests are being encoded (large
 * pictures, so each encode takes a while: decoding and resizing them dominates), and no request
 * fails: each answers exactly what it answered alone. With 2 vision workers the requests of the
 * killed one move to the other; with 1, under {@code owlery local}'s supervisor, they wait for the
 * restarted one. The coordinator's image cache is off, so that every request is encoded anew.
 */
class VisionWorkerLossTest {

  private static final int NUM_REQUESTS = 8;
  /** Width and height of each picture: 4 megapixels to decode and resize down to 56 x 56. */
  private static final int SIDE = 2000;
  private static final String IMAGES_ENCODED = "owlery_vision_images_total";
  /** Scalar kernels: a row's logits do not depend on what shares its step (design notes, Batch invariance). */
  private static final LocalClusterOptions OPTIONS = LocalClusterOptions.DEFAULT
      .withJvmOptions(TestNodeJvm.with("-Xmx512m", "-D" + KernelsProvider.PROPERTY + "=scalar"))
      .withCoordinatorArgs(List.of("--image-cache-bytes=0", "--reform-timeout=PT120S"));

  private static List<GenerateRequest> requests;

  @BeforeAll
  static void drawPictures() {
    requests = IntStream.range(0, NUM_REQUESTS).mapToObj(i -> GenerateRequest.newBuilder()
        .setPromptText("USER: <|image|>Describe the image. ASSISTANT:").addImages(Image.newBuilder()
            .setData(ByteString.copyFrom(picture(i)))).setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setMaxNewTokens(8).setTemperature(0).build()).toList();
  }

  /** A PNG of smooth gradients, different for each {@code seed}. */
  private static byte[] picture(int seed) {
    BufferedImage image = new BufferedImage(SIDE, SIDE, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < SIDE; y++) {
      for (int x = 0; x < SIDE; x++) {
        int r = (x * 255 / SIDE + 40 * seed) & 0xff;
        int g = (y * 255 / SIDE + 90 * seed) & 0xff;
        int b = ((x + y) * 127 / SIDE + 25 * seed) & 0xff;
        image.setRGB(x, y, r << 16 | g << 8 | b);
      }
    }
    ByteArrayOutputStream png = new ByteArrayOutputStream();
    try {
      ImageIO.write(image, "png", png);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return png.toByteArray();
  }

  /** One request under way: when its first token came (0: not yet), and its completion. */
  private record Stream(AtomicLong firstTokenNanos, CompletableFuture<Completion> done) {

    static Stream start(OwleryClient client, GenerateRequest request) {
      Stream stream = new Stream(new AtomicLong(), new CompletableFuture<>());
      client.generate(request, new GenerationListener() {
        @Override
        public void onDelta(GenerateDelta delta) {
          stream.firstTokenNanos.compareAndSet(0, System.nanoTime());
        }

        @Override
        public void onFinish(Completion completion) {
          stream.done.complete(completion);
        }

        @Override
        public void onError(OwleryException error) {
          stream.done.completeExceptionally(error);
        }
      });
      return stream;
    }
  }

  /**
   * Runs every request alone, then all at once; once {@code victim} has answered some of its
   * encodes (so that it holds the others), runs {@code kill}. Asserts that every request completes
   * with its solo tokens, and that some were still waiting for their images at the kill.
   */
  private static void killWhileEncoding(OwleryClient client, int numVisionWorkers, String victim, Runnable kill) {
    List<Completion> solo = requests.stream().map(client::generate).toList();
    String metrics = node(client, victim).getMetricsUrl();
    double encodedBefore = PrometheusScrape.of(metrics).sum(IMAGES_ENCODED);

    List<Stream> streams = requests.stream().map(request -> Stream.start(client, request)).toList();
    await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(5))
        .until(() -> PrometheusScrape.of(metrics).sum(IMAGES_ENCODED) > encodedBefore);
    kill.run();
    long killedAt = System.nanoTime();
    int numWaiting = (int) streams.stream().filter(stream -> stream.firstTokenNanos().get() == 0).count();

    long longestWait = 0;
    for (int i = 0; i < NUM_REQUESTS; i++) {
      Completion completed = streams.get(i).done().orTimeout(150, TimeUnit.SECONDS).join(); // a failed one throws
      assertThat(completed.tokenIds()).as("request %d", i).containsExactlyElementsOf(solo.get(i).tokenIds());
      assertThat(completed.text()).isEqualTo(solo.get(i).text());
      longestWait = Math.max(longestWait, streams.get(i).firstTokenNanos().get() - killedAt);
    }
    assertThat(numWaiting).as("requests still waiting for their images when %s died", victim).isPositive();
    long longestWaitMs = TimeUnit.NANOSECONDS.toMillis(longestWait);
    System.out.printf("VisionWorkerLossTest: %d of %d requests waiting when %s of %d vision worker(s) died; the last "
        + "first token came %d ms after the kill%n", numWaiting, NUM_REQUESTS, victim, numVisionWorkers, longestWaitMs);
  }

  private static NodeStatus node(OwleryClient client, String nodeId) {
    return client.getClusterStatus().getNodesList().stream().filter(n -> n.getNodeId().equals(nodeId)).findFirst()
        .orElseThrow(() -> new AssertionError(nodeId + " is not registered"));
  }

  @Test
  void withTwoVisionWorkersTheKilledOnesRequestsMoveToTheOther() {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.tinyOwl2(), 1, 2, 0, new PrintWriter(log, true), OPTIONS);
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(150)).build()) {
      cluster.awaitReady(2, Duration.ofSeconds(240));
      String other = node(client, "vision-1").getMetricsUrl();

      double otherBefore = PrometheusScrape.of(other).sum(IMAGES_ENCODED);
      killWhileEncoding(client, 2, "vision-0", () -> cluster.kill(cluster.liveNode("vision-0")));

      // The pool gave each worker about half; vision-0 died having answered one or two (each takes
      // a while), so vision-1 encoded more than half: its own and those vision-0 held.
      assertThat(PrometheusScrape.of(other).sum(IMAGES_ENCODED) - otherBefore).isGreaterThan(NUM_REQUESTS / 2.0);
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }

  @Test
  void withOneVisionWorkerTheRequestsWaitForTheSupervisorToRestartIt() {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.tinyOwl2(), 1, 1, 0, new PrintWriter(log, true), OPTIONS);
        OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
            .defaultDeadline(Duration.ofSeconds(150)).build()) {
      cluster.awaitReady(1, Duration.ofSeconds(240));
      cluster.supervise();
      String before = node(client, "vision-0").getGrpcAddress();

      // SIGKILL from outside, as the OOM killer would: not LocalCluster.kill, which means "on purpose".
      killWhileEncoding(client, 1, "vision-0", () -> cluster.liveNode("vision-0").process().destroyForcibly());

      NodeStatus restarted = node(client, "vision-0");
      assertThat(restarted.getGrpcAddress()).isNotEqualTo(before);
      assertThat(restarted.getState()).isEqualTo(NodeState.NODE_STATE_READY);
      // the restarted process encoded the images the killed one held
      assertThat(PrometheusScrape.of(restarted.getMetricsUrl()).sum(IMAGES_ENCODED)).isPositive();
      assertThat(log.toString())
          .contains("owlery local: vision-0 (vision-worker) died with exit status 137 (killed by signal 9) after ");
    } catch (RuntimeException | AssertionError e) {
      throw new AssertionError(e + "; the nodes said:\n" + log, e);
    }
  }
}
