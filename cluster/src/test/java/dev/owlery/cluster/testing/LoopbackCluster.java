package dev.owlery.cluster.testing;

import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.membership.MembershipConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import org.awaitility.core.ConditionTimeoutException;

/**
 * Starts real Hazelcast members on loopback with TCP-IP join, under a fresh cluster name, for
 * tests. Members start in parallel; each is registered with {@code cleanup}, which terminates it
 * after the test (terminate, not a graceful leave: nothing is left to hand over).
 */
public final class LoopbackCluster {

  private LoopbackCluster() {}

  /** A cluster name no other test uses. */
  public static String freshClusterName() {
    return "owlery-test-" + UUID.randomUUID();
  }

  /** Starts {@code count} members that list each other, and returns them once all have joined. */
  public static List<ClusterMember> start(int count, GrpcCleanup cleanup) {
    String clusterName = freshClusterName();
    List<Integer> ports = freePorts(count);
    List<String> addresses = ports.stream().map(port -> "127.0.0.1:" + port).toList();
    List<CompletableFuture<ClusterMember>> starting = new ArrayList<>();
    try (ExecutorService starter = Executors.newFixedThreadPool(count)) {
      for (int port : ports) {
        MembershipConfig config = MembershipConfig.of(clusterName, "127.0.0.1", port, addresses);
        starting.add(CompletableFuture.supplyAsync(() -> ClusterMember.start(config), starter));
      }
    }
    List<ClusterMember> members = new ArrayList<>();
    RuntimeException failure = null;
    for (CompletableFuture<ClusterMember> future : starting) {
      try {
        ClusterMember member = future.join();
        cleanup.onCleanup(member::terminate);
        members.add(member);
      } catch (CompletionException e) {
        failure = failure == null ? e : failure;
      }
    }
    if (failure != null) {
      throw failure;
    }
    awaitOneCluster(members);
    return members;
  }

  /**
   * Waits until every member sees all of them: members started at the same moment can each form a
   * cluster of their own before the others listen, and then merge (after 5 s, see ClusterMember).
   */
  private static void awaitOneCluster(List<ClusterMember> members) {
    try {
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(50))
          .until(() -> members.stream().allMatch(member -> member.members().size() == members.size()));
    } catch (ConditionTimeoutException e) {
      throw new IllegalStateException("the " + members.size() + " members did not form one cluster in 30 s; they see "
          + members.stream().map(member -> member.members().size()).toList() + " members", e);
    }
  }

  /**
   * Test nodes' ports come from here: below Linux's default ephemeral range (32768-60999), where an
   * outgoing connection can take a port between its pick and its bind (seen in CI: a shard worker's
   * Hazelcast port, picked by binding port 0, was taken before the member bound it), and below
   * 20,000-32,767, which {@code owlery local} hands out.
   */
  private static final int PORTS_FROM = 10_000;
  private static final int PORTS_UNTIL = 20_000;
  /** Ports handed out by this JVM, never handed out again (nodes of earlier tests may still hold them). */
  private static final Set<Integer> PORTS_GIVEN = new HashSet<>();

  /** {@code count} ports free on loopback now, from {@link #PORTS_FROM}, none handed out before by this JVM. */
  public static List<Integer> freePorts(int count) {
    List<Integer> ports = new ArrayList<>();
    synchronized (PORTS_GIVEN) {
      for (int attempt = 0; ports.size() < count; attempt++) {
        if (attempt == 1_000) {
          throw new UncheckedIOException(new IOException("cannot find %d free ports on loopback between %d and %d"
              .formatted(count, PORTS_FROM, PORTS_UNTIL)));
        }
        int candidate = PORTS_FROM + ThreadLocalRandom.current().nextInt(PORTS_UNTIL - PORTS_FROM);
        if (PORTS_GIVEN.contains(candidate)) {
          continue;
        }
        try (ServerSocket socket = new ServerSocket(candidate, 1, InetAddress.getLoopbackAddress())) {
          PORTS_GIVEN.add(candidate);
          ports.add(candidate);
        } catch (IOException taken) {
          // in use: try another
        }
      }
    }
    return List.copyOf(ports);
  }
}
