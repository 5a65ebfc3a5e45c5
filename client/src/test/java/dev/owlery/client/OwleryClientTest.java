package dev.owlery.client;

import static java.time.Duration.ofMillis;
import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.TokenLogprob;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The SDK against a fake coordinator on an in-process server. */
class OwleryClientTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private final FakeOwlery fake = new FakeOwlery();
  private OwleryClient client;

  @BeforeEach
  void startFake() throws Exception {
    String name = InProcessServerBuilder.generateName();
    cleanup.register(InProcessServerBuilder.forName(name).directExecutor().addService(fake).build().start());
    var channel = cleanup.register(InProcessChannelBuilder.forName(name).directExecutor().build());
    client = OwleryClient.builder().channel(channel).defaultDeadline(ofSeconds(10)).build();
  }

  private static GenerateRequest prompt(String text) {
    return GenerateRequest.newBuilder().setPromptText(text).build();
  }

  private void assertHelloWorld(Completion completion) {
    assertThat(completion.text()).isEqualTo("Hello world");
    assertThat(completion.tokenIds()).containsExactly(15043, 29877, 3186);
    assertThat(completion.logprobs()).extracting(TokenLogprob::getLogprob).containsExactly(-0.25f, -0.5f, -1.0f);
    assertThat(completion.finishReason()).isEqualTo(FinishReason.FINISH_REASON_EOS_TOKEN);
    assertThat(FinishReasons.apiName(completion.finishReason())).isEqualTo("stop_token");
    assertThat(completion.stopString()).isEmpty();
    assertThat(completion.usage()).isEqualTo(FakeOwlery.USAGE);
  }

  private void assertServerSawCancel() throws InterruptedException {
    assertThat(fake.cancelled.await(5, TimeUnit.SECONDS)).as("server saw the cancellation").isTrue();
  }

  @Test
  void blockingGenerateReturnsTheWholeCompletion() {
    assertHelloWorld(client.generate(prompt("hello")));
  }

  @Test
  void iteratorYieldsDeltasThenTheFinish() {
    List<GenerateResponse> messages = new CopyOnWriteArrayList<>();
    try (GenerationStream stream = client.generateStream(prompt("hello"))) {
      stream.forEachRemaining(messages::add);
    }

    assertThat(messages).extracting(m -> m.getDelta().getText()).containsExactly("Hel", "lo", " world", "");
    assertThat(messages.getLast().getFinish().getUsage()).isEqualTo(FakeOwlery.USAGE);
  }

  @Test
  void callbackReceivesDeltasThenTheCompletion() throws Exception {
    List<String> texts = new CopyOnWriteArrayList<>();
    CompletableFuture<Completion> finished = new CompletableFuture<>();
    client.generate(prompt("hello"), new RecordingListener(texts, finished));

    assertHelloWorld(finished.get(5, TimeUnit.SECONDS));
    assertThat(texts).containsExactly("Hel", "lo", " world");
  }

  @Test
  void asyncGenerateCompletesTheFuture() throws Exception {
    assertHelloWorld(client.generateAsync(prompt("hello")).get(5, TimeUnit.SECONDS));
  }

  @Test
  void deadlineExceededSaysTheDeadlineAndTheTokensReceived() {
    assertThatThrownBy(() -> client.withDeadline(ofMillis(200)).generate(prompt("silent")))
        .isInstanceOfSatisfying(
            OwleryException.class,
            e -> {
              assertThat(e.code()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
              assertThat(e.description()).isEqualTo("deadline of 0.2 s exceeded after 0 tokens");
              assertThat(e.reachedServer()).isFalse();
            });
    assertThatThrownBy(() -> client.withDeadline(ofMillis(500)).generate(prompt("hang")))
        .isInstanceOfSatisfying(
            OwleryException.class,
            e -> assertThat(e.description()).isEqualTo("deadline of 0.5 s exceeded after 1 token"));
    assertThatThrownBy(() -> client.withDeadline(ofMillis(500)).generateAsync(prompt("hang")).get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOfSatisfying(
            OwleryException.class,
            e -> assertThat(e.description()).isEqualTo("deadline of 0.5 s exceeded after 1 token"));
  }

  @Test
  void nothingListeningIsSaidAsACannotConnect() throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      port = socket.getLocalPort();
    }
    OwleryClient unreachable = OwleryClient.builder().target("127.0.0.1:" + port).defaultDeadline(ofSeconds(10)).build();
    try {
      for (Runnable call : List.<Runnable>of(() -> unreachable.generate(prompt("hello")), unreachable::listModels)) {
        assertThatThrownBy(call::run)
            .isInstanceOfSatisfying(
                OwleryException.class,
                e -> {
                  assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE);
                  assertThat(e.description()).isEqualTo("cannot connect to 127.0.0.1:%d (connection refused)".formatted(port));
                  assertThat(e.reachedServer()).isFalse();
                });
      }
    } finally {
      unreachable.close();
    }
  }

  @Test
  void serverStatusBecomesAnOwleryExceptionWithItsDescription() {
    assertThatThrownBy(() -> client.generate(prompt("invalid")))
        .isInstanceOfSatisfying(
            OwleryException.class,
            e -> {
              assertThat(e.code()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.description()).isEqualTo("`max_new_tokens` must be >= 1. Given: 0");
              assertThat(e).hasMessage("INVALID_ARGUMENT: `max_new_tokens` must be >= 1. Given: 0");
              assertThat(e.reachedServer()).isTrue();
            });
    assertThatThrownBy(() -> client.generateAsync(prompt("invalid")).get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOfSatisfying(
            OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.INVALID_ARGUMENT));
  }

  @Test
  void aStreamWithoutFinishIsAnInternalError() {
    assertThatThrownBy(() -> client.generate(prompt("truncated")))
        .isInstanceOfSatisfying(
            OwleryException.class,
            e -> {
              assertThat(e.code()).isEqualTo(Status.Code.INTERNAL);
              assertThat(e.description()).isEqualTo("the server ended the Generate stream without a finish message");
            });
  }

  @Test
  void closingAnIteratorEarlyCancelsOnTheServer() throws Exception {
    GenerationStream stream = client.generateStream(prompt("hang"));
    assertThat(stream.next().getDelta().getText()).isEqualTo("Hel");

    stream.close();

    assertServerSawCancel();
    assertThatThrownBy(stream::hasNext)
        .isInstanceOfSatisfying(OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.CANCELLED));
  }

  @Test
  void cancellingAHandleCancelsOnTheServerAndTellsTheListener() throws Exception {
    List<String> texts = new CopyOnWriteArrayList<>();
    CompletableFuture<Completion> finished = new CompletableFuture<>();
    GenerationHandle handle = client.generate(prompt("hang"), new RecordingListener(texts, finished));
    assertThat(fake.held.await(5, TimeUnit.SECONDS)).isTrue();

    handle.cancel();

    assertServerSawCancel();
    assertThatThrownBy(() -> finished.get(5, TimeUnit.SECONDS))
        .cause()
        .isInstanceOfSatisfying(OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.CANCELLED));
    assertThat(texts).containsExactly("Hel");
  }

  @Test
  void cancellingTheFutureCancelsOnTheServer() throws Exception {
    CompletableFuture<Completion> future = client.generateAsync(prompt("silent"));
    assertThat(fake.held.await(5, TimeUnit.SECONDS)).isTrue();

    assertThat(future.cancel(true)).isTrue();

    assertServerSawCancel();
  }

  @Test
  void imagesTravelAsTheFileBytes(@TempDir Path dir) throws Exception {
    byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    Path file = Files.write(dir.resolve("owl.png"), png);

    client.generate(prompt("hello").toBuilder().addImages(Images.fromPath(file)).addImages(Images.fromBytes(png)).build());

    GenerateRequest seen = fake.lastRequest.get();
    assertThat(seen.getImagesCount()).isEqualTo(2);
    assertThat(seen.getImages(0).getData().toByteArray()).isEqualTo(png);
    assertThat(seen.getImages(1).getData().toByteArray()).isEqualTo(png);
    assertThatThrownBy(() -> Images.fromPath(dir.resolve("missing.png")))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessageContaining("cannot read image " + dir.resolve("missing.png").toAbsolutePath());
  }

  @Test
  void unaryCallsUseTheDeadlineAndMapStatuses() {
    assertThat(client.listModels()).extracting(m -> m.getName()).containsExactly("mplug-owl2-llama2-7b");
    assertThatThrownBy(() -> client.getClusterStatus())
        .isInstanceOfSatisfying(
            OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNIMPLEMENTED));
  }

  @Test
  void builderNeedsExactlyOneOfTargetAndChannel() {
    assertThatThrownBy(() -> OwleryClient.builder().build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageStartingWith("set exactly one of target and channel");
    assertThatThrownBy(() -> OwleryClient.builder().defaultDeadline(ofSeconds(0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("defaultDeadline must be a positive duration. Given: PT0S");
  }

  /** Forwards deltas' text to a list and the outcome to a future. */
  private record RecordingListener(List<String> texts, CompletableFuture<Completion> finished)
      implements GenerationListener {
    @Override
    public void onDelta(GenerateDelta delta) {
      texts.add(delta.getText());
    }

    @Override
    public void onFinish(Completion completion) {
      finished.complete(completion);
    }

    @Override
    public void onError(OwleryException error) {
      finished.completeExceptionally(error);
    }
  }
}
