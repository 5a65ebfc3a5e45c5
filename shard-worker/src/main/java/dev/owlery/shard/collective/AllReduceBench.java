package dev.owlery.shard.collective;

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Times the all-reduce of one tensor-parallel group on this host, through gRPC messages and through
 * shared memory, side by side ({@code owlery bench --all-reduce}): each rank a thread of this JVM
 * with its own Netty server and ShardPeer service on loopback, as shard workers are, running the
 * same all-reduces back to back. The time of one all-reduce is rank 0's, from its call to its return.
 */
public final class AllReduceBench {

  /** One transport at one size: the median and mean time of an all-reduce, in microseconds. */
  public record Result(String transport, int floats, double medianMicros, double meanMicros) {}

  private AllReduceBench() {}

  /**
   * Runs {@code iterations} all-reduces of each size in {@code floats} (after as many to warm up)
   * over {@code ranks} ranks, first through gRPC messages, then through files under {@code
   * sharedMemoryDir}; returns the results in that order, sizes within each.
   */
  public static List<Result> run(int ranks, List<Integer> floats, int iterations, Path sharedMemoryDir)
      throws InterruptedException, IOException {
    if (ranks < 2) {
      throw new IllegalArgumentException("an all-reduce needs at least 2 ranks. Given: " + ranks);
    }
    List<Result> results = new ArrayList<>();
    results.addAll(runGroup("grpc", ranks, floats, iterations, null));
    results.addAll(runGroup("shared-memory", ranks, floats, iterations, sharedMemoryDir));
    return results;
  }

  private static List<Result> runGroup(String transport, int ranks, List<Integer> floats, int iterations, Path dir)
      throws InterruptedException, IOException {
    int maxFloats = floats.stream().mapToInt(Integer::intValue).max().orElseThrow();
    List<Server> servers = new ArrayList<>();
    List<ShardPeerService> services = new ArrayList<>();
    List<GrpcCollective> collectives = new ArrayList<>();
    ExecutorService threads = Executors.newFixedThreadPool(ranks);
    try {
      List<String> addresses = new ArrayList<>();
      for (int r = 0; r < ranks; r++) {
        ShardPeerService service = new ShardPeerService();
        services.add(service);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .permitKeepAliveTime(1, TimeUnit.SECONDS).permitKeepAliveWithoutCalls(true).addService(service).build()
            .start();
        servers.add(server);
        addresses.add("127.0.0.1:" + server.getPort());
      }
      String groupId = "all-reduce-bench-" + UUID.randomUUID();
      CollectiveConfig config = CollectiveConfig.defaults().withSharedMemory(dir);
      for (int r = 0; r < ranks; r++) {
        // hidden size 1: every size is whole rows, and a slot holds the largest
        collectives.add(new GrpcCollective(new PeerGroup(groupId, r, ranks, addresses), 1, 1, maxFloats, config,
            new SimpleMeterRegistry()));
      }
      List<Future<long[][]>> timings = new ArrayList<>();
      for (int r = 0; r < ranks; r++) {
        GrpcCollective collective = collectives.get(r);
        ShardPeerService service = services.get(r);
        timings.add(threads.submit(() -> {
          collective.connect(service);
          return timeAll(collective, floats, iterations);
        }));
      }
      long[][] rank0 = timings.getFirst().get(10, TimeUnit.MINUTES);
      for (Future<long[][]> timing : timings) {
        timing.get(10, TimeUnit.MINUTES);
      }
      if (dir != null && !collectives.getFirst().sharesMemoryWith(1)) {
        throw new IllegalStateException("the ranks could not share memory through " + dir);
      }
      List<Result> results = new ArrayList<>();
      for (int s = 0; s < floats.size(); s++) {
        long[] nanos = rank0[s];
        Arrays.sort(nanos);
        results.add(new Result(transport, floats.get(s), nanos[nanos.length / 2] / 1e3,
            Arrays.stream(nanos).average().orElseThrow() / 1e3));
      }
      return results;
    } catch (ExecutionException | TimeoutException e) {
      throw new IllegalStateException("the " + transport + " all-reduce failed: " + e.getCause(), e);
    } finally {
      collectives.forEach(GrpcCollective::close);
      services.forEach(ShardPeerService::close);
      servers.forEach(Server::shutdownNow);
      threads.shutdownNow();
    }
  }

  /** This rank's nanoseconds per all-reduce, per size, after as many unrecorded ones. */
  private static long[][] timeAll(GrpcCollective collective, List<Integer> floats, int iterations) {
    long[][] nanos = new long[floats.size()][iterations];
    long step = 0;
    for (int s = 0; s < floats.size(); s++) {
      float[] x = new float[floats.get(s)];
      for (int i = -iterations; i < iterations; i++) {
        Arrays.fill(x, collective.rank() + 1);
        collective.beginStep(step++, GrpcCollective.NO_DEADLINE);
        long start = System.nanoTime();
        collective.allReduceSum(x, 0, x.length);
        long elapsed = System.nanoTime() - start;
        collective.endStep();
        if (i >= 0) {
          nanos[s][i] = elapsed;
        }
        float expected = collective.size() * (collective.size() + 1) / 2f;
        if (x[0] != expected || x[x.length - 1] != expected) {
          throw new IllegalStateException("the all-reduce summed to " + x[0] + ", not " + expected);
        }
      }
    }
    return nanos;
  }
}
