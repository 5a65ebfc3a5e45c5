package dev.owlery.coordinator.placement;

import com.google.protobuf.ByteString;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistryListener;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.EncodeImagesRequest;
import dev.owlery.proto.internal.v1.EncodeImagesResponse;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.proto.internal.v1.VisionWorkerGrpc;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.Image;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.HashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The READY vision workers, re-read from the registry after every registry event about one, and
 * the choice of one for each request: the worker with the fewest calls in flight. A worker that fails (anything but INVALID_ARGUMENT, which
 * is the request's fault and is passed on) is skipped and the next one tried; when none is left the
 * request waits for one to register (a restarted worker counts as a new one) for up to {@code
 * waitForWorker} from its start, then fails with UNAVAILABLE naming the last worker and its error.
 * Thread-safe, non-blocking.
 */
public final class VisionWorkerPool implements NodeRegistryListener, AutoCloseable {

  private static final Logger LOG = Logger.getLogger(VisionWorkerPool.class.getName());

  private record Worker(String nodeId, String address, AtomicInteger inFlight) {

    /** What a request remembers having tried: a worker restarted on another address is another one. */
    String key() {
      return nodeId + "@" + address;
    }
  }

  /** A request that found no worker left to try, waiting for one until {@code deadlineNanos}. */
  private record Waiter(EncodeImagesRequest request, Context context, Set<String> tried, String lastFailure,
      CompletableFuture<List<ByteString>> result, long deadlineNanos) {}

  private static final long WAITER_CHECK_MS = 100;

  private final Supplier<List<NodeRecord>> registered;
  // Re-reads the registry off the Hazelcast event thread, which must not block.
  private final ScheduledExecutorService syncer =
      Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("owlery-vision-pool").daemon().factory());
  private final ConcurrentLinkedQueue<Waiter> waiters = new ConcurrentLinkedQueue<>();
  private final Duration waitForWorker;
  private final AtomicBoolean syncQueued = new AtomicBoolean();
  /** Whether a retry of the waiters is scheduled: only while a request waits, so an idle pool never wakes. */
  private final AtomicBoolean retryScheduled = new AtomicBoolean();
  private final NodeChannels channels;
  private final Duration timeout;
  private final int numImageTokens;
  private final int hiddenSize;
  private final Map<String, Worker> workers = new ConcurrentHashMap<>();

  /**
   * @param registered reads the registry's vision workers (blocking is fine: called on the pool's thread)
   * @param timeout deadline of one EncodeImages call (the request's own deadline also applies)
   * @param waitForWorker how long a request that finds no worker left waits for one to register
   * @param numImageTokens rows each image must come back as
   * @param hiddenSize width of each row
   */
  public VisionWorkerPool(Supplier<List<NodeRecord>> registered, NodeChannels channels, Duration timeout,
      Duration waitForWorker, int numImageTokens, int hiddenSize) {
    this.waitForWorker = waitForWorker;
    this.registered = registered;
    this.channels = channels;
    this.timeout = timeout;
    this.numImageTokens = numImageTokens;
    this.hiddenSize = hiddenSize;
  }

  /** Reads the registry now, on the calling thread, and takes its READY vision workers. */
  public void sync() {
    syncQueued.set(false);
    Map<String, NodeRecord> ready = new HashMap<>();
    for (NodeRecord node : registered.get()) {
      if (node.role() == NodeRole.VISION_WORKER && node.state() == NodeState.READY) {
        ready.put(node.nodeId(), node);
      }
    }
    workers.keySet().removeIf(nodeId -> !ready.containsKey(nodeId));
    for (NodeRecord node : ready.values()) {
      workers.compute(node.nodeId(), (id, known) -> known != null && known.address().equals(node.grpcAddress())
          ? known : new Worker(id, node.grpcAddress(), new AtomicInteger()));
    }
    retryWaiters();
  }

  /** Schedules one retry of the waiting requests, unless one is already scheduled. */
  private void scheduleRetry() {
    if (retryScheduled.compareAndSet(false, true)) {
      try {
        syncer.schedule(this::retryWaiters, WAITER_CHECK_MS, TimeUnit.MILLISECONDS);
      } catch (RejectedExecutionException e) {
        // Closed: close() ends the waiters.
      }
    }
  }

  /** Tries the waiting requests again (a worker may have registered); fails those whose wait is over. */
  private void retryWaiters() {
    retryScheduled.set(false);
    for (int n = waiters.size(); n > 0; n--) {
      Waiter waiter = waiters.poll();
      if (waiter == null) {
        return;
      }
      if (!waiter.result().isDone()) {
        attempt(waiter.request(), waiter.context(), waiter.tried(), waiter.lastFailure(), waiter.result(),
            waiter.deadlineNanos());
      }
    }
  }

  @Override
  public void nodeAdded(NodeRecord node) {
    requestSync(node);
  }

  @Override
  public void nodeUpdated(NodeRecord previous, NodeRecord current) {
    requestSync(current);
  }

  @Override
  public void nodeRemoved(NodeRecord node) {
    requestSync(node);
  }

  /** Queues a re-read for a change to a vision worker's record (null: a removal whose record the event lacks). */
  private void requestSync(NodeRecord node) {
    if ((node == null || node.role() == NodeRole.VISION_WORKER) && syncQueued.compareAndSet(false, true)) {
      try {
        syncer.execute(this::syncQuietly);
      } catch (RejectedExecutionException e) {
        // Closed.
      }
    }
  }

  private void syncQuietly() {
    try {
      sync();
    } catch (RuntimeException e) {
      // The registry is unreachable (shutting down); the next event tries again.
      LOG.log(Level.FINE, "could not read the vision workers from the registry", e);
    }
  }

  /** Stops syncing; requests still waiting for a worker end with UNAVAILABLE. */
  @Override
  public void close() {
    syncer.shutdownNow();
    for (Waiter waiter; (waiter = waiters.poll()) != null; ) {
      waiter.result().completeExceptionally(Status.UNAVAILABLE
          .withDescription("the coordinator is shutting down; retry on another").asRuntimeException());
    }
  }

  /** Node ids of the workers in the pool, sorted. */
  public List<String> nodeIds() {
    return workers.keySet().stream().sorted().toList();
  }

  /**
   * Encodes {@code images}: one F32 {@code [numImageTokens, hiddenSize]} row block per image, in
   * order, as little-endian bytes. Calls run in the caller's gRPC {@link Context}, so the request's
   * deadline and cancellation reach the vision worker.
   *
   * @return a future failing with a {@link StatusRuntimeException}
   */
  public CompletableFuture<List<ByteString>> encode(List<Image> images, AspectRatioPolicy policy) {
    EncodeImagesRequest request =
        EncodeImagesRequest.newBuilder().addAllImages(images).setAspectRatioPolicy(policy).build();
    CompletableFuture<List<ByteString>> result = new CompletableFuture<>();
    attempt(request, Context.current(), ConcurrentHashMap.newKeySet(), null, result,
        System.nanoTime() + waitForWorker.toNanos());
    return result;
  }

  private void attempt(EncodeImagesRequest request, Context context, Set<String> tried, String lastFailure,
      CompletableFuture<List<ByteString>> result, long deadlineNanos) {
    Worker worker = workers.values().stream().filter(w -> !tried.contains(w.key()))
        .min(Comparator.comparingInt((Worker w) -> w.inFlight().get()).thenComparing(Worker::nodeId)).orElse(null);
    if (worker == null) {
      if (System.nanoTime() < deadlineNanos && !context.isCancelled() && !syncer.isShutdown()) {
        waiters.add(new Waiter(request, context, tried, lastFailure, result, deadlineNanos));
        scheduleRetry();
        return;
      }
      String waited = "within %d ms".formatted(waitForWorker.toMillis());
      String message = lastFailure == null
          ? "no vision worker was ready to encode the request's images " + waited + "; start one or retry shortly"
          : lastFailure + "; no other vision worker was ready " + waited + "; retry shortly";
      result.completeExceptionally(Status.UNAVAILABLE.withDescription(message).asRuntimeException());
      return;
    }
    tried.add(worker.key());
    worker.inFlight().incrementAndGet();
    VisionWorkerGrpc.VisionWorkerStub stub = VisionWorkerGrpc.newStub(channels.channel(worker.address()))
        .withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
    CompletableFuture<EncodeImagesResponse> call;
    Context previous = context.attach();
    try {
      call = UnaryCalls.call(stub::encodeImages, request);
    } finally {
      context.detach(previous);
    }
    result.whenComplete((value, error) -> call.cancel(true));
    call.whenComplete((response, error) -> {
      worker.inFlight().decrementAndGet();
      if (error == null) {
        complete(worker, request.getImagesCount(), response, result);
        return;
      }
      Status status = Status.fromThrowable(error);
      if (status.getCode() == Status.Code.INVALID_ARGUMENT || context.isCancelled()) {
        result.completeExceptionally(status.asRuntimeException());
        return;
      }
      String failure = "vision worker %s (%s) failed: %s%s".formatted(worker.nodeId(), worker.address(),
          status.getCode(), status.getDescription() == null ? "" : ": " + status.getDescription());
      attempt(request, context, tried, failure, result, deadlineNanos);
    });
  }

  private void complete(Worker worker, int numImages, EncodeImagesResponse response,
      CompletableFuture<List<ByteString>> result) {
    List<ByteString> embeddings = new ArrayList<>(numImages);
    long rowBytes = (long) numImageTokens * hiddenSize * Float.BYTES;
    String problem = response.getImageEmbeddingsCount() != numImages
        ? "%d tensors for %d images".formatted(response.getImageEmbeddingsCount(), numImages) : null;
    for (int i = 0; problem == null && i < numImages; i++) {
      Tensor tensor = response.getImageEmbeddings(i);
      if (tensor.getDtype() != DType.DTYPE_F32 || !tensor.getShapeList().equals(List.of((long) numImageTokens,
          (long) hiddenSize)) || tensor.getData().size() != rowBytes) {
        problem = "image_embeddings[%d] is %s %s with %d bytes; expected DTYPE_F32 [%d, %d] with %d bytes".formatted(
            i, tensor.getDtype(), tensor.getShapeList(), tensor.getData().size(), numImageTokens, hiddenSize, rowBytes);
      } else {
        embeddings.add(tensor.getData());
      }
    }
    if (problem != null) {
      result.completeExceptionally(Status.INTERNAL.withDescription(
          "vision worker %s (%s) answered %s (is it serving another model?)".formatted(worker.nodeId(),
              worker.address(), problem)).asRuntimeException());
      return;
    }
    result.complete(List.copyOf(embeddings));
  }
}
