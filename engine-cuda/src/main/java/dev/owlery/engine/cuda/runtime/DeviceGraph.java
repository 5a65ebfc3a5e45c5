package dev.owlery.engine.cuda.runtime;

/**
 * Launches recorded once by {@link Device#capture} and replayed as one unit (a CUDA graph on the
 * GPU): the kernels, grids and arguments are fixed at capture, the memory they point at is read
 * when a replay runs, so a caller refills its buffers and replays. Closing releases the graph.
 */
public interface DeviceGraph extends AutoCloseable {

  /** Queues every recorded launch, in the recorded order, after the work queued before. */
  void replay();

  @Override
  void close();
}
