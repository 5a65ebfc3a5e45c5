package dev.owlery.engine.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The bounded set of threads the vector kernels split one call over: {@code numThreads - 1} daemon
 * workers plus the calling thread. One call uses the workers at a time; a call that finds them busy
 * (another rank's thread inside a kernel) runs on its own thread, so callers never wait on each
 * other. Nothing is allocated per call. Public so that kernels built on the vector kernels ({@code
 * engine-native}'s) share their threads instead of starting a second set that spins beside them.
 */
public final class ComputePool implements AutoCloseable {

  /** Work shared by the threads of one call; each thread calls {@link #runShare()} once. */
  public interface SharedTask {
    /** Does work until none is left; safe to call from several threads at once. */
    void runShare();
  }

  /** How long a thread spins before parking, so back-to-back kernel calls skip the wake-up. */
  private static final long SPIN_NANOS = 50_000;

  private final Worker[] workers;
  private final ReentrantLock lock = new ReentrantLock();
  private final AtomicInteger pending = new AtomicInteger();
  private volatile Thread caller;
  private volatile Throwable workerFailure;
  private volatile boolean closed;

  ComputePool(int numThreads) {
    if (numThreads < 1) {
      throw new IllegalArgumentException("kernel threads must be >= 1, got " + numThreads);
    }
    workers = new Worker[numThreads - 1];
    for (int i = 0; i < workers.length; i++) {
      workers[i] = new Worker("owlery-kernel-" + (i + 1));
      workers[i].start();
    }
  }

  public int numThreads() {
    return workers.length + 1;
  }

  /**
   * Runs {@code task} on the caller and every free worker; returns when all of them are done. A
   * call from inside a task (the caller's share or a worker's) runs on its own thread alone.
   */
  public void run(SharedTask task) {
    if (workers.length == 0 || closed || lock.isHeldByCurrentThread() || !lock.tryLock()) {
      task.runShare();
      return;
    }
    try {
      workerFailure = null;
      caller = Thread.currentThread();
      pending.set(workers.length);
      for (Worker w : workers) {
        w.assign(task);
      }
      Throwable own = null;
      try {
        task.runShare();
      } catch (RuntimeException | Error e) {
        own = e;
      }
      awaitWorkers();
      Throwable failure = own != null ? own : workerFailure;
      if (failure instanceof RuntimeException e) {
        throw e;
      } else if (failure instanceof Error e) {
        throw e;
      }
    } finally {
      lock.unlock();
    }
  }

  private void awaitWorkers() {
    long start = System.nanoTime();
    while (pending.get() != 0) {
      if (System.nanoTime() - start < SPIN_NANOS) {
        Thread.onSpinWait();
      } else {
        LockSupport.park(this);
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    for (Worker w : workers) {
      LockSupport.unpark(w);
    }
  }

  private final class Worker extends Thread {
    private volatile SharedTask task;

    Worker(String name) {
      super(name);
      setDaemon(true);
    }

    void assign(SharedTask t) {
      task = t;
      LockSupport.unpark(this);
    }

    @Override
    public void run() {
      while (!closed) {
        SharedTask t = awaitTask();
        if (t == null) {
          continue;
        }
        try {
          t.runShare();
        } catch (RuntimeException | Error e) {
          workerFailure = e;
        } finally {
          task = null;
          if (pending.decrementAndGet() == 0) {
            LockSupport.unpark(caller);
          }
        }
      }
    }

    private SharedTask awaitTask() {
      long start = System.nanoTime();
      SharedTask t;
      while ((t = task) == null && !closed) {
        if (System.nanoTime() - start < SPIN_NANOS) {
          Thread.onSpinWait();
        } else {
          LockSupport.park(this);
        }
      }
      return t;
    }
  }
}
