package dev.owlery.shard.collective;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.testing.GrpcCleanup;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ranks on one host exchange their partials through files of shared memory ({@link SharedSlots}):
 * real ranks, each with its own Netty server and ShardPeer service on loopback, in this JVM. The
 * sums are bit for bit those of the message path (rank order), no contribution crosses a stream,
 * a rank that cannot map the files keeps messages with everyone, a partial longer than a slot
 * follows on the stream, and a lost or silent peer fails the all-reduce as on the message path.
 */
class SharedMemoryAllReduceTest {

  private static final int NUM_LAYERS = 2;
  private static final int HIDDEN = 4;
  /** Slots of MAX_TOKENS x HIDDEN = 8 floats. */
  private static final int MAX_TOKENS = 2;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();
  @TempDir Path shm;

  private final ExecutorService threads = Executors.newCachedThreadPool();
  private final List<GrpcCollective> collectives = new ArrayList<>();
  private final List<Server> servers = new ArrayList<>();
  private final List<MeterRegistry> meters = new ArrayList<>();

  @AfterEach
  void closeRanks() {
    collectives.forEach(GrpcCollective::close);
    threads.shutdownNow();
  }

  /** Starts and connects one rank per entry of {@code dirs} (null: no shared memory for that rank). */
  private void formGroup(CollectiveConfig config, Path... dirs) throws Exception {
    List<ShardPeerService> services = new ArrayList<>();
    List<String> addresses = new ArrayList<>();
    for (Path ignored : dirs) {
      ShardPeerService service = cleanup.register(new ShardPeerService());
      Server server = cleanup.register(NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
          .permitKeepAliveTime(1, TimeUnit.SECONDS).permitKeepAliveWithoutCalls(true).addService(service).build()
          .start());
      services.add(service);
      servers.add(server);
      addresses.add("127.0.0.1:" + server.getPort());
    }
    String groupId = "shm-" + UUID.randomUUID();
    List<Future<?>> connects = new ArrayList<>();
    for (int r = 0; r < dirs.length; r++) {
      SimpleMeterRegistry registry = new SimpleMeterRegistry();
      GrpcCollective collective = new GrpcCollective(new PeerGroup(groupId, r, dirs.length, addresses), NUM_LAYERS,
          HIDDEN, MAX_TOKENS, config.withSharedMemory(dirs[r]), registry);
      collectives.add(collective);
      meters.add(registry);
      ShardPeerService service = services.get(r);
      connects.add(threads.submit(() -> collective.connect(service)));
    }
    for (Future<?> connect : connects) {
      connect.get(30, TimeUnit.SECONDS);
    }
  }

  /** Rank r's partial of all-reduce k: values that round differently in different orders. */
  private static float[] partial(int rank, int k, int length) {
    float[] x = new float[length];
    for (int i = 0; i < length; i++) {
      x[i] = (float) ((rank + 1) * Math.pow(10, (i + k) % 7 - 3) + 0.1 * (i - rank) + k / 3.0);
    }
    return x;
  }

  /** The sum in rank order, as every rank must hold it. */
  private static float[] expected(int ranks, int k, int length) {
    float[] sum = new float[length];
    for (int i = 0; i < length; i++) {
      float s = 0f;
      for (int r = 0; r < ranks; r++) {
        s += partial(r, k, length)[i];
      }
      sum[i] = s;
    }
    return sum;
  }

  /** Every rank runs all-reduces of these lengths in one step, each on its own thread; checks every sum. */
  private void allReduce(long stepId, int... lengths) throws Exception {
    int n = collectives.size();
    List<Future<List<float[]>>> results = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      int rank = r;
      results.add(threads.submit(() -> {
        GrpcCollective collective = collectives.get(rank);
        collective.beginStep(stepId, GrpcCollective.NO_DEADLINE);
        List<float[]> sums = new ArrayList<>();
        for (int k = 0; k < lengths.length; k++) {
          float[] x = new float[lengths[k] + 3];
          System.arraycopy(partial(rank, k, lengths[k]), 0, x, 3, lengths[k]); // at an offset
          collective.allReduceSum(x, 3, lengths[k]);
          sums.add(Arrays.copyOfRange(x, 3, 3 + lengths[k]));
        }
        collective.endStep();
        return sums;
      }));
    }
    for (int r = 0; r < n; r++) {
      List<float[]> sums = results.get(r).get(30, TimeUnit.SECONDS);
      for (int k = 0; k < lengths.length; k++) {
        assertThat(sums.get(k)).as("rank %d all-reduce %d", r, k).containsExactly(expected(n, k, lengths[k]));
      }
    }
  }

  private double counter(int rank, String name, String direction) {
    return meters.get(rank).get(name).tag("direction", direction).counter().count();
  }

  private List<Path> filesIn(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.toList();
    }
  }

  @Test
  void threeRanksOnOneHostSumThroughSharedMemoryWithoutAContributionOnAStream() throws Exception {
    formGroup(CollectiveConfig.defaults(), shm, shm, shm);
    assertThat(filesIn(shm)).hasSize(3);
    for (int r = 0; r < 3; r++) {
      for (int p = 0; p < 3; p++) {
        assertThat(collectives.get(r).sharesMemoryWith(p)).isEqualTo(p != r);
      }
    }

    allReduce(1, 8, 4, 8, 1, 5); // more than two all-reduces: both slots are reused
    allReduce(2, 8, 8, 8);

    for (int r = 0; r < 3; r++) {
      assertThat(counter(r, GrpcCollective.BYTES, "sent")).isZero();
      assertThat(counter(r, GrpcCollective.BYTES, "received")).isZero();
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "written")).isEqualTo(4.0 * (8 + 4 + 8 + 1 + 5 + 24));
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "read")).isEqualTo(2 * 4.0 * (8 + 4 + 8 + 1 + 5 + 24));
      StepTraffic traffic = collectives.get(r).lastStep();
      assertThat(traffic.payloadBytesSent()).isEqualTo(2 * 4L * 24);
      assertThat(traffic.payloadBytesReceived()).isEqualTo(2 * 4L * 24);
      assertThat(traffic.messageBytesSent()).isZero();
    }
    // once every peer has mapped it (its first partial came), each rank's file loses its name
    assertThat(filesIn(shm)).isEmpty();
  }

  @Test
  void aRankWithoutSharedMemoryExchangesMessagesWithEveryoneAndTheOthersShareTheirs() throws Exception {
    formGroup(CollectiveConfig.defaults(), shm, shm, null);
    assertThat(collectives.get(0).sharesMemoryWith(1)).isTrue();
    assertThat(collectives.get(1).sharesMemoryWith(0)).isTrue();
    assertThat(collectives.get(0).sharesMemoryWith(2)).isFalse();
    assertThat(collectives.get(2).sharesMemoryWith(0)).isFalse();
    assertThat(collectives.get(2).sharesMemoryWith(1)).isFalse();

    allReduce(1, 8, 3, 8, 6);

    int payloadBytes = 4 * (8 + 3 + 8 + 6);
    assertThat(counter(2, GrpcCollective.SHARED_BYTES, "written")).isZero();
    assertThat(collectives.get(2).lastStep().payloadBytesReceived()).isEqualTo(2L * payloadBytes);
    assertThat(collectives.get(2).lastStep().messageBytesReceived()).isGreaterThan(2L * payloadBytes);
    for (int r = 0; r < 2; r++) {
      // to rank 2 as messages; from the other through the file
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "written")).isEqualTo(payloadBytes);
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "read")).isEqualTo(payloadBytes);
      StepTraffic traffic = collectives.get(r).lastStep();
      assertThat(traffic.messageBytesSent()).isGreaterThan(payloadBytes).isLessThan(2L * payloadBytes);
      assertThat(traffic.messageBytesReceived()).isGreaterThan(payloadBytes).isLessThan(2L * payloadBytes);
    }
  }

  @Test
  void anOfferThisHostCannotMapIsDeclined() throws Exception {
    // the acceptor answers accepted only for a file it mapped: another host's path, or a file of that
    // name that is not the one offered, leaves the pair on messages
    SharedSlots offered = SharedSlots.create(shm, 8);
    assertThat(PeerLinks.mapOffered(offered.offer())).isNotNull();
    assertThat(PeerLinks.mapOffered(offered.offer().toBuilder().setPath(shm.resolve("on-another-host").toString())
        .build())).isNull();
    assertThat(PeerLinks.mapOffered(offered.offer().toBuilder().setToken(offered.offer().getToken() + 1).build()))
        .isNull();
    assertThat(PeerLinks.mapOffered(offered.offer().toBuilder().setPath("not\0a path").build())).isNull();
    offered.unlink();
  }

  @Test
  void aPartialLongerThanASlotFollowsOnTheStreamAndTheNextFitsAgain() throws Exception {
    formGroup(CollectiveConfig.defaults(), shm, shm);

    allReduce(1, 8, 20, 8); // slots hold 8 floats: the second goes as a message

    for (int r = 0; r < 2; r++) {
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "written")).isEqualTo(4.0 * 16);
      assertThat(counter(r, GrpcCollective.SHARED_BYTES, "read")).isEqualTo(4.0 * 16);
      StepTraffic traffic = collectives.get(r).lastStep();
      assertThat(traffic.payloadBytesSent()).isEqualTo(4L * 36);
      assertThat(traffic.messageBytesSent()).isGreaterThan(4L * 20).isLessThan(4L * 36);
      assertThat(traffic.messageBytesReceived()).isEqualTo(traffic.messageBytesSent());
    }
  }

  @Test
  void aPeerLostWhileARankWaitsForItsSlotFailsTheAllReduceNamingIt() throws Exception {
    // all-reduce waits of 60 s: failing within 10 s proves the broken stream was noticed
    formGroup(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofSeconds(60)), shm, shm);
    GrpcCollective rank0 = collectives.get(0);
    CompletableFuture<Void> waiting = CompletableFuture.runAsync(() -> {
      rank0.beginStep(7, GrpcCollective.NO_DEADLINE);
      rank0.allReduceSum(new float[8], 0, 8);
    }, threads);
    Thread.sleep(200);
    assertThat(waiting).isNotDone();

    String rank1 = "127.0.0.1:" + servers.get(1).getPort();
    servers.get(1).shutdownNow(); // as a crash: rank 1's end of the stream goes away
    collectives.get(1).close();

    assertThatThrownBy(() -> waiting.get(10, TimeUnit.SECONDS)).cause().isInstanceOf(PeerLostException.class)
        .hasMessageContaining("lost peer rank 1 at " + rank1);
    assertThat(rank0.isBroken()).isTrue();
    assertThatThrownBy(() -> rank0.allReduceSum(new float[8], 0, 8)).isInstanceOf(PeerLostException.class);
  }

  @Test
  void aSilentPeerTimesOutTheAllReduceAsOnTheMessagePath() throws Exception {
    formGroup(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofMillis(300)), shm, shm);
    GrpcCollective rank0 = collectives.get(0);
    rank0.beginStep(3, GrpcCollective.NO_DEADLINE);
    long start = System.nanoTime();

    assertThatThrownBy(() -> rank0.allReduceSum(new float[8], 0, 8)).isInstanceOf(PeerLostException.class)
        .hasMessageContaining("step 3 all-reduce #0: no contribution from peer rank 1 at 127.0.0.1:"
            + servers.get(1).getPort() + " within 300 ms");
    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isBetween(300L, 5_000L);
    // the silent rank learns it too: rank 0 closed its streams
    assertThatThrownBy(() -> {
      collectives.get(1).beginStep(3, GrpcCollective.NO_DEADLINE);
      long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (!collectives.get(1).isBroken() && System.nanoTime() < giveUp) {
        Thread.sleep(10);
      }
      collectives.get(1).allReduceSum(new float[8], 0, 8);
    }).isInstanceOf(PeerLostException.class).hasMessageContaining("rank 0");
  }

  @Test
  void aSlotWhoseTagsDoNotFitBreaksTheGroup() throws Exception {
    formGroup(CollectiveConfig.defaults(), shm, shm);
    List<Future<?>> calls = new ArrayList<>();
    for (int r = 0; r < 2; r++) {
      GrpcCollective collective = collectives.get(r);
      int length = r == 0 ? 8 : 6; // the ranks disagree on the all-reduce
      calls.add(threads.submit(() -> {
        collective.beginStep(1, GrpcCollective.NO_DEADLINE);
        collective.allReduceSum(new float[8], 0, length);
        return null;
      }));
    }
    List<Throwable> failures = new ArrayList<>();
    for (Future<?> call : calls) {
      assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS)).cause().isInstanceOf(PeerLostException.class)
          .satisfies(failures::add);
    }
    // the rank that finds the other's slot first names the misfit; the other may find its group broken first
    assertThat(failures).anySatisfy(e -> assertThat(e).hasMessageContaining(
        "wrote a partial that does not fit to shared memory: step 1 ordinal 0 layer 0 phase 2"));
    assertThat(collectives).allSatisfy(collective -> assertThat(collective.isBroken()).isTrue());
  }

  @Test
  void filesOfProcessesThatAreGoneAreRemovedWhenTheNextIsCreated() throws Exception {
    Process done = new ProcessBuilder("true").start();
    done.waitFor(10, TimeUnit.SECONDS);
    Path leftover = Files.createFile(shm.resolve(SharedSlots.FILE_PREFIX + done.pid() + "-0123456789abcdef"));
    Path alive = Files.createFile(shm.resolve(SharedSlots.FILE_PREFIX + ProcessHandle.current().pid() + "-00"));
    Path unrelated = Files.createFile(shm.resolve("someone-else"));

    SharedSlots slots = SharedSlots.create(shm, 8);

    assertThat(leftover).doesNotExist();
    assertThat(alive).exists();
    assertThat(unrelated).exists();
    assertThat(slots.path()).exists();
    assertThat(Files.getPosixFilePermissions(slots.path()).toString()).isEqualTo("[OWNER_READ, OWNER_WRITE]");
    assertThat(Files.size(slots.path())).isEqualTo(64 + 2 * (64 + 4 * 8));
    assertThatThrownBy(() -> SharedSlots.open(slots.path(), slots.offer().getToken() + 1))
        .hasMessageContaining("not the file offered");
    slots.unlink();
    assertThat(slots.path()).doesNotExist();
  }
}
