package dev.owlery.visionworker;

import dev.owlery.engine.cuda.forward.DeviceVisionTower;
import dev.owlery.engine.cuda.runtime.Device;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The vision tower on a device, in passes of up to {@link DeviceVisionTower#maxImages()} images: the
 * images of every call queued while a pass runs (a call's several images, or concurrent calls'
 * images) go into the next pass together, in arrival order; a call with more images than a pass
 * takes spans several. One thread of its own owns the device and runs the passes; callers only
 * queue, and are answered through their futures. The queue holds at most {@code maxQueuedImages}
 * images: a call that does not fit is refused whole, never split or blocked.
 */
final class DeviceImageEncoder implements ImageEncoder {

  private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);

  /** One call's images: filled pass by pass on the device thread, completed when its last image is done. */
  private static final class Call {
    final float[][] visualEmbeds;
    final CompletableFuture<Encoded> done = new CompletableFuture<>();
    int remaining;
    long visionNs;
    long abstractorNs;
    long lastPass = -1; // the pass whose times were added last: a pass's times count once per call

    Call(int numImages) {
      this.visualEmbeds = new float[numImages][];
      this.remaining = numImages;
    }
  }

  private record Pending(Call call, int index, float[] pixelValues) {}

  private final Device device;
  private final DeviceVisionTower tower;
  private final int maxQueuedImages;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition queued = lock.newCondition();
  /** Guarded by {@link #lock}: images waiting for a pass, in arrival order. */
  private final ArrayDeque<Pending> queue = new ArrayDeque<>();
  /** Guarded by {@link #lock}: no more calls are taken; the thread ends once the queue is empty. */
  private boolean closed;
  private final AtomicLong passes = new AtomicLong();
  private final Thread thread;

  /**
   * Takes ownership of {@code device} (closed by {@link #close}); {@link #start} begins the passes.
   *
   * @param maxQueuedImages images waiting for a pass at most, >= the tower's pass size
   */
  DeviceImageEncoder(Device device, DeviceVisionTower tower, int maxQueuedImages) {
    if (maxQueuedImages < tower.maxImages()) {
      throw new IllegalArgumentException("maxQueuedImages (%d) must be >= the images of one pass (%d)"
          .formatted(maxQueuedImages, tower.maxImages()));
    }
    this.device = device;
    this.tower = tower;
    this.maxQueuedImages = maxQueuedImages;
    this.thread = Thread.ofPlatform().name("owlery-vision-device").daemon().unstarted(this::runPasses);
  }

  /** Starts the device thread; images queued before run in its first passes. */
  DeviceImageEncoder start() {
    thread.start();
    return this;
  }

  /** Passes run so far. */
  long passes() {
    return passes.get();
  }

  @Override
  public CompletableFuture<Encoded> encode(List<float[]> pixelValues) {
    if (pixelValues.isEmpty()) {
      return CompletableFuture.completedFuture(new Encoded(List.of(), 0, 0)); // no pass would ever complete it
    }
    Call call = new Call(pixelValues.size());
    lock.lock();
    try {
      if (closed) {
        return CompletableFuture.failedFuture(new IllegalStateException("the vision worker is shutting down"));
      }
      if (queue.size() + pixelValues.size() > maxQueuedImages) {
        return CompletableFuture.failedFuture(new RejectedExecutionException(
            "%d images are waiting for the device (at most %d); these %d do not fit"
                .formatted(queue.size(), maxQueuedImages, pixelValues.size())));
      }
      for (int i = 0; i < pixelValues.size(); i++) {
        queue.add(new Pending(call, i, pixelValues.get(i)));
      }
      queued.signal();
    } finally {
      lock.unlock();
    }
    return call.done;
  }

  private void runPasses() {
    while (true) {
      List<Pending> pass = new ArrayList<>(tower.maxImages());
      lock.lock();
      try {
        while (queue.isEmpty() && !closed) {
          queued.awaitUninterruptibly();
        }
        if (queue.isEmpty()) {
          return; // closed and drained
        }
        while (!queue.isEmpty() && pass.size() < tower.maxImages()) {
          pass.add(queue.poll());
        }
      } finally {
        lock.unlock();
      }
      run(pass);
    }
  }

  private void run(List<Pending> pass) {
    long passNumber = passes.incrementAndGet();
    DeviceVisionTower.Encoded encoded;
    try {
      encoded = tower.encode(pass.stream().map(Pending::pixelValues).toList());
    } catch (RuntimeException e) {
      pass.forEach(p -> p.call().done.completeExceptionally(e));
      return;
    }
    for (int i = 0; i < pass.size(); i++) {
      Call call = pass.get(i).call();
      call.visualEmbeds[pass.get(i).index()] = encoded.visualEmbeds().get(i);
      if (call.lastPass != passNumber) {
        call.lastPass = passNumber;
        call.visionNs += encoded.visionNs();
        call.abstractorNs += encoded.abstractorNs();
      }
      if (--call.remaining == 0) {
        call.done.complete(new Encoded(List.of(call.visualEmbeds), call.visionNs, call.abstractorNs));
      }
    }
  }

  @Override
  public int numVisualTokens() {
    return tower.numVisualTokens();
  }

  @Override
  public int hiddenSize() {
    return tower.hiddenSize();
  }

  /** Runs what is queued, stops the device thread (bounded) and closes the device. */
  @Override
  public void close() {
    lock.lock();
    try {
      closed = true;
      queued.signal();
    } finally {
      lock.unlock();
    }
    try {
      if (thread.isAlive() && !thread.join(CLOSE_TIMEOUT)) {
        throw new IllegalStateException("the vision device thread did not finish within " + CLOSE_TIMEOUT);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      failQueued(); // left only when the thread never started
      device.close();
    }
  }

  private void failQueued() {
    lock.lock();
    try {
      queue.forEach(p -> p.call().done.completeExceptionally(
          new IllegalStateException("the vision worker shut down before these images ran")));
      queue.clear();
    } finally {
      lock.unlock();
    }
  }
}
