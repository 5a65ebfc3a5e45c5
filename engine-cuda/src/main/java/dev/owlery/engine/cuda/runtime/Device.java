package dev.owlery.engine.cuda.runtime;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;

/**
 * What the device forward needs from a device: memory, copies to and from the host, launches of the
 * kernels of {@link PtxKernels} with the arguments their catalogue entry lists, and a barrier.
 *
 * <p>Ordering: launches and copies run in the order they are called (one stream); a copy to the
 * host returns once the data is there, so it also waits for every launch before it. Buffers
 * returned by {@link #allocate} are zero-filled and live until {@link #free}, {@link #freeAll} or
 * {@link #close}. One thread uses a device at a time.
 */
public interface Device extends AutoCloseable {

  /** The device's name, for reports ("NVIDIA H200", "cpu twins"). */
  String name();

  /** A zero-filled buffer of {@code bytes}. */
  DevicePointer allocate(long bytes);

  /** Frees the buffer that {@code start} (as {@link #allocate} returned it) begins. */
  void free(DevicePointer start);

  /** Frees every buffer of this device. */
  void freeAll();

  /** Copies {@code count} floats from {@code src[srcOffset]} to {@code dst}. */
  void copyToDevice(DevicePointer dst, float[] src, int srcOffset, int count);

  /** Copies {@code count} ints from {@code src[srcOffset]} to {@code dst}. */
  void copyToDevice(DevicePointer dst, int[] src, int srcOffset, int count);

  /** Copies {@code count} 16-bit elements (F16 or BF16 bits) from {@code src[srcOffset]} to {@code dst}. */
  void copyToDevice(DevicePointer dst, short[] src, int srcOffset, int count);

  /** Copies {@code count} bytes from {@code src[srcOffset]} to {@code dst}. */
  void copyToDevice(DevicePointer dst, byte[] src, int srcOffset, int count);

  /** Copies {@code bytes} from {@code src} to {@code dst} on the device, in order with the launches. */
  void copy(DevicePointer dst, DevicePointer src, long bytes);

  /** Copies {@code count} floats from {@code src} to {@code dst[dstOffset]}, after every earlier launch. */
  void copyToHost(float[] dst, int dstOffset, DevicePointer src, int count);

  /** Copies {@code count} 16-bit elements from {@code src} to {@code dst[dstOffset]}, after every earlier launch. */
  void copyToHost(short[] dst, int dstOffset, DevicePointer src, int count);

  /**
   * Queues {@code kernel} on a {@code gridX x gridY} grid of blocks of its catalogued block size.
   * {@code args} are {@link DevicePointer}, {@link Integer} or {@link Float}, matching the
   * catalogue's parameters in order ({@link KernelArguments#check}).
   */
  void launch(PtxKernel kernel, int gridX, int gridY, Object... args);

  /**
   * Runs {@code launches} with this device recording, not running, every {@link #launch} it makes;
   * returns them as a graph. Only launches may happen inside: a copy, allocation or free there is
   * refused with {@link IllegalStateException} (on the GPU a stream capture cannot take them).
   */
  DeviceGraph capture(Runnable launches);

  /** Waits for every queued launch and copy. */
  void synchronize();

  /** Frees every buffer and releases the device. */
  @Override
  void close();

  /** A new buffer holding {@code data}. */
  default DevicePointer upload(float[] data) {
    DevicePointer p = allocate(4L * data.length);
    copyToDevice(p, data, 0, data.length);
    return p;
  }

  /** A new buffer holding {@code data}. */
  default DevicePointer upload(int[] data) {
    DevicePointer p = allocate(4L * data.length);
    copyToDevice(p, data, 0, data.length);
    return p;
  }

  /** A new buffer holding {@code data}. */
  default DevicePointer upload(short[] data) {
    DevicePointer p = allocate(2L * data.length);
    copyToDevice(p, data, 0, data.length);
    return p;
  }

  /** {@code count} floats from {@code src}. */
  default float[] downloadFloats(DevicePointer src, int count) {
    float[] out = new float[count];
    copyToHost(out, 0, src, count);
    return out;
  }

  /** {@code count} 16-bit elements from {@code src}. */
  default short[] downloadShorts(DevicePointer src, int count) {
    short[] out = new short[count];
    copyToHost(out, 0, src, count);
    return out;
  }
}
