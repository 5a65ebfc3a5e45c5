package dev.owlery.cluster.testing;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A JUnit 5 extension that does what grpc-testing's {@code GrpcCleanupRule} does for JUnit 4: after
 * each test it shuts down every registered server, channel and closeable in reverse order of
 * registration, and fails the test when a server or channel does not terminate within 5 s.
 * Register it with {@code @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();}.
 */
public final class GrpcCleanup implements AfterEachCallback {

  private static final long TERMINATION_TIMEOUT_SECONDS = 5;

  private interface Resource {
    /** Closes; returns a failure description, or null when it terminated. */
    String close() throws Exception;
  }

  private final Deque<Resource> resources = new ArrayDeque<>();

  public synchronized <T extends Server> T register(T server) {
    resources.push(
        () -> {
          server.shutdown();
          if (server.awaitTermination(TERMINATION_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            return null;
          }
          server.shutdownNow();
          return "server " + server + " did not terminate within " + TERMINATION_TIMEOUT_SECONDS + " s";
        });
    return server;
  }

  public synchronized <T extends ManagedChannel> T register(T channel) {
    resources.push(
        () -> {
          channel.shutdown();
          if (channel.awaitTermination(TERMINATION_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            return null;
          }
          channel.shutdownNow();
          return "channel " + channel + " did not terminate within " + TERMINATION_TIMEOUT_SECONDS + " s";
        });
    return channel;
  }

  /** Registers anything else with a bounded {@code close()} (GrpcServer, ClusterMember, ...). */
  public synchronized <T extends AutoCloseable> T register(T closeable) {
    resources.push(
        () -> {
          closeable.close();
          return null;
        });
    return closeable;
  }

  /** Runs {@code action} at cleanup, in the same reverse order (e.g. {@code member::terminate}). */
  public void onCleanup(AutoCloseable action) {
    register(action);
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    List<String> failures = new ArrayList<>();
    Exception firstError = null;
    while (true) {
      Resource resource;
      synchronized (this) {
        resource = resources.poll();
      }
      if (resource == null) {
        break;
      }
      try {
        String failure = resource.close();
        if (failure != null) {
          failures.add(failure);
        }
      } catch (Exception e) {
        if (firstError == null) {
          firstError = e;
        } else {
          firstError.addSuppressed(e);
        }
      }
    }
    if (firstError != null) {
      throw firstError;
    }
    if (!failures.isEmpty()) {
      throw new AssertionError("cleanup failed: " + failures);
    }
  }
}
