package dev.owlery.engine.cuda.runtime;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link Device} in Java: buffers are heap memory, and each launch runs the kernel's Java twin
 * ({@link KernelTwins}) at once, over exactly the blocks its grid covers. It computes what the CUDA
 * kernels are documented to compute, on the same buffer layouts (F16 where a kernel stores F16), so
 * that a launch sequence that is right here differs on the GPU only by the kernels' own rounding.
 * Launches after a copy see the copy; nothing is asynchronous.
 */
public final class CpuTwinDevice implements Device {

  private final Map<Integer, MemorySegment> allocations = new HashMap<>();
  private final KernelTwins twins = new KernelTwins(this::segment);
  private int nextAllocation;
  private long launches;
  private long graphReplays;
  private List<Object[]> recording; // while capturing: each launch as {kernel, gridX, gridY, args}

  @Override
  public String name() {
    return "cpu kernel twins";
  }

  /** Kernels run since this device was made (replayed ones included): how a test sees a launch sequence's length. */
  public long launches() {
    return launches;
  }

  /** Graph replays since this device was made. */
  public long graphReplays() {
    return graphReplays;
  }

  @Override
  public DevicePointer allocate(long bytes) {
    refuseWhileCapturing("allocate");
    if (bytes < 0 || bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("the CPU twin device holds buffers of 0 to 2^31 - 1 bytes, asked for " + bytes);
    }
    int id = nextAllocation++;
    allocations.put(id, MemorySegment.ofArray(new byte[(int) bytes]));
    return new DevicePointer(id, 0);
  }

  @Override
  public void free(DevicePointer start) {
    refuseWhileCapturing("free");
    if (start.byteOffset() != 0 || allocations.remove(start.allocation()) == null) {
      throw new IllegalArgumentException("free takes the start of a live buffer of this device, given " + start);
    }
  }

  @Override
  public void freeAll() {
    allocations.clear();
  }

  @Override
  public void copyToDevice(DevicePointer dst, float[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(src, srcOffset, segment(dst), KernelTwins.F32, 0, count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, int[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(src, srcOffset, segment(dst), KernelTwins.I32, 0, count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, short[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(src, srcOffset, segment(dst), KernelTwins.I16, 0, count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, byte[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(src, srcOffset, segment(dst), ValueLayout.JAVA_BYTE, 0, count);
  }

  @Override
  public void copy(DevicePointer dst, DevicePointer src, long bytes) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(segment(src), 0, segment(dst), 0, bytes);
  }

  @Override
  public void copyToHost(float[] dst, int dstOffset, DevicePointer src, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(segment(src), KernelTwins.F32, 0, dst, dstOffset, count);
  }

  @Override
  public void copyToHost(short[] dst, int dstOffset, DevicePointer src, int count) {
    refuseWhileCapturing("a copy");
    MemorySegment.copy(segment(src), KernelTwins.I16, 0, dst, dstOffset, count);
  }

  @Override
  public void launch(PtxKernel kernel, int gridX, int gridY, Object... args) {
    KernelArguments.check(kernel, gridX, gridY, args);
    if (recording != null) {
      recording.add(new Object[] {kernel, gridX, gridY, args.clone()});
      return;
    }
    twins.run(kernel, gridX, gridY, args);
    launches++;
  }

  @Override
  public DeviceGraph capture(Runnable launches) {
    if (recording != null) {
      throw new IllegalStateException("a capture is already under way");
    }
    recording = new ArrayList<>();
    List<Object[]> recorded;
    try {
      launches.run();
    } finally {
      recorded = List.copyOf(recording);
      recording = null;
    }
    return new DeviceGraph() {
      @Override
      public void replay() {
        refuseWhileCapturing("a replay");
        for (Object[] l : recorded) {
          launch((PtxKernel) l[0], (Integer) l[1], (Integer) l[2], (Object[]) l[3]);
        }
        graphReplays++;
      }

      @Override
      public void close() {
        // nothing held beyond the recorded list
      }
    };
  }

  private void refuseWhileCapturing(String what) {
    if (recording != null) {
      throw new IllegalStateException(what + " inside a graph capture: only kernel launches can be captured");
    }
  }

  @Override
  public void synchronize() {
    // every launch and copy has completed when its call returned
  }

  @Override
  public void close() {
    freeAll();
  }

  /** The memory from {@code p} to the end of its buffer. */
  private MemorySegment segment(DevicePointer p) {
    MemorySegment base = allocations.get(p.allocation());
    if (base == null) {
      throw new IllegalArgumentException("no live buffer " + p.allocation() + " on this device (freed, or another device's)");
    }
    if (p.byteOffset() > base.byteSize()) {
      throw new IllegalArgumentException("pointer %s is past the end of its %d-byte buffer".formatted(p, base.byteSize()));
    }
    return base.asSlice(p.byteOffset());
  }
}
