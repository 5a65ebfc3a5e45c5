package dev.owlery.engine.cuda.check;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD16;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxModule;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

/**
 * Device 0 for the kernel check, through JCuda's driver API: one context, every {@link PtxModule}
 * loaded from its PTX text (the driver JIT-compiles it for the device), device buffers freed on
 * close. Every driver call throws {@link CudaException} on an error. Not thread-safe: the check runs
 * on one thread.
 */
final class Gpu implements AutoCloseable {

  /** Thrown by {@link #open()} when there is no device to run on; the message is the reason. */
  static final class NoDeviceException extends Exception {
    NoDeviceException(String reason) {
      super(reason);
    }
  }

  private final CUcontext context;
  private final String deviceName;
  private final Map<PtxModule, CUmodule> modules = new EnumMap<>(PtxModule.class);
  private final List<CUdeviceptr> allocations = new ArrayList<>();

  private Gpu(CUcontext context, String deviceName) {
    this.context = context;
    this.deviceName = deviceName;
  }

  /** Creates a context on device 0 and loads every module, or says why there is no device. */
  static Gpu open() throws NoDeviceException {
    try {
      JCudaDriver.setExceptionsEnabled(true);
      cuInit(0);
    } catch (UnsatisfiedLinkError e) {
      String message = String.valueOf(e.getMessage());
      throw new NoDeviceException(message.contains("libcuda.so")
          ? "the NVIDIA driver library libcuda.so.1 is not installed, so JCuda's driver API cannot load"
          : "JCuda's driver library did not load: " + message.lines().findFirst().orElse(""));
    } catch (CudaException e) {
      throw new NoDeviceException("cuInit failed: " + e.getMessage());
    }
    int[] count = new int[1];
    cuDeviceGetCount(count);
    if (count[0] == 0) {
      throw new NoDeviceException("the NVIDIA driver reports no CUDA device");
    }
    CUdevice device = new CUdevice();
    cuDeviceGet(device, 0);
    byte[] name = new byte[256];
    cuDeviceGetName(name, name.length, device);
    CUcontext context = new CUcontext();
    cuCtxCreate(context, 0, device);
    Gpu gpu = new Gpu(context, cString(name));
    try {
      for (PtxModule module : PtxModule.values()) {
        CUmodule loaded = new CUmodule();
        cuModuleLoadData(loaded, (module.ptx() + "\0").getBytes(StandardCharsets.UTF_8));
        gpu.modules.put(module, loaded);
      }
    } catch (RuntimeException e) {
      gpu.close();
      throw e;
    }
    return gpu;
  }

  String deviceName() {
    return deviceName;
  }

  CUdeviceptr upload(float[] data) {
    CUdeviceptr p = allocate(4L * data.length);
    cuMemcpyHtoD(p, Pointer.to(data), 4L * data.length);
    return p;
  }

  CUdeviceptr upload(int[] data) {
    CUdeviceptr p = allocate(4L * data.length);
    cuMemcpyHtoD(p, Pointer.to(data), 4L * data.length);
    return p;
  }

  CUdeviceptr upload(short[] data) {
    CUdeviceptr p = allocate(2L * data.length);
    cuMemcpyHtoD(p, Pointer.to(data), 2L * data.length);
    return p;
  }

  /** A zero-filled buffer of {@code bytes}. */
  CUdeviceptr zeros(long bytes) {
    CUdeviceptr p = allocate(bytes);
    cuMemsetD8(p, (byte) 0, bytes);
    return p;
  }

  float[] downloadFloats(CUdeviceptr p, int count) {
    float[] out = new float[count];
    cuMemcpyDtoH(Pointer.to(out), p, 4L * count);
    return out;
  }

  short[] downloadShorts(CUdeviceptr p, int count) {
    short[] out = new short[count];
    cuMemcpyDtoH(Pointer.to(out), p, 2L * count);
    return out;
  }

  /**
   * Launches {@code kernel} on a {@code gridX x gridY} grid of its catalogued block size and waits
   * for it. {@code args} are {@link CUdeviceptr}, {@link Integer} or {@link Float}, matching the
   * catalogue's parameter types in order.
   */
  void launch(PtxKernel kernel, int gridX, int gridY, Object... args) {
    launchAsync(kernel, gridX, gridY, args);
    cuCtxSynchronize();
  }

  /** As {@link #launch} without waiting: the launch is queued on the default stream. */
  void launchAsync(PtxKernel kernel, int gridX, int gridY, Object... args) {
    List<PtxKernel.Param> params = kernel.params();
    if (args.length != params.size()) {
      throw new IllegalArgumentException("%s takes %d arguments (%s), given %d"
          .formatted(kernel.name(), params.size(), params, args.length));
    }
    Pointer[] pointers = new Pointer[args.length];
    for (int i = 0; i < args.length; i++) {
      PtxKernel.ParamType type = params.get(i).type();
      pointers[i] = switch (args[i]) {
        case CUdeviceptr p when type == PtxKernel.ParamType.POINTER -> Pointer.to(p);
        case Integer v when type == PtxKernel.ParamType.INT -> Pointer.to(new int[] {v});
        case Float v when type == PtxKernel.ParamType.FLOAT -> Pointer.to(new float[] {v});
        default -> throw new IllegalArgumentException("argument %d of %s ('%s') must be a %s, given %s"
            .formatted(i, kernel.name(), params.get(i).name(), type, args[i]));
      };
    }
    CUfunction function = new CUfunction();
    cuModuleGetFunction(function, modules.get(kernel.module()), kernel.name());
    cuLaunchKernel(function, gridX, gridY, 1, kernel.blockSize(), 1, 1, 0, null, Pointer.to(pointers), null);
  }

  /** A buffer of {@code count} 16-bit elements, each {@code bits} (weights whose values do not matter). */
  CUdeviceptr filled16(long count, short bits) {
    CUdeviceptr p = allocate(2 * count);
    cuMemsetD16(p, bits, count);
    return p;
  }

  /** Copies {@code bytes} from src to dst on the device, queued on the default stream. */
  void copyAsync(CUdeviceptr dst, CUdeviceptr src, long bytes) {
    cuMemcpyDtoD(dst, src, bytes);
  }

  /**
   * Milliseconds per run of {@code work} (which queues device work on the default stream), measured
   * with CUDA events over {@code repeats} runs after one run to warm up.
   */
  double millisecondsPerRun(int repeats, Runnable work) {
    work.run();
    CUevent start = new CUevent();
    CUevent end = new CUevent();
    cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
    cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT);
    try {
      cuEventRecord(start, null);
      for (int i = 0; i < repeats; i++) {
        work.run();
      }
      cuEventRecord(end, null);
      cuEventSynchronize(end);
      float[] ms = new float[1];
      cuEventElapsedTime(ms, start, end);
      return ms[0] / repeats;
    } finally {
      cuEventDestroy(start);
      cuEventDestroy(end);
    }
  }

  /** Frees this check's buffers (between cases, so one case's memory does not outlive it). */
  void freeAll() {
    List<CUdeviceptr> buffers = List.copyOf(allocations);
    allocations.clear(); // a failed free is not retried: after a sticky error none would succeed
    for (CUdeviceptr p : buffers) {
      cuMemFree(p);
    }
  }

  @Override
  public void close() {
    try {
      freeAll();
    } finally {
      cuCtxDestroy(context);
    }
  }

  private CUdeviceptr allocate(long bytes) {
    CUdeviceptr p = new CUdeviceptr();
    cuMemAlloc(p, Math.max(bytes, 1));
    allocations.add(p);
    return p;
  }

  private static String cString(byte[] bytes) {
    int end = 0;
    while (end < bytes.length && bytes[end] != 0) {
      end++;
    }
    return new String(bytes, 0, end, StandardCharsets.US_ASCII);
  }
}
