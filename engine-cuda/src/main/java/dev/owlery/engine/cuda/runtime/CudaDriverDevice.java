package dev.owlery.engine.cuda.runtime;

import static jcuda.driver.JCudaDriver.CU_STREAM_LEGACY;
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
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
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
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;

import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.ptx.PtxModule;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
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
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA device through JCuda's driver API: one context, every {@link PtxModule} loaded from its PTX
 * text (the driver JIT-compiles it for the device), launches on the default stream. Every driver
 * call throws {@link CudaException} on an error. Not thread-safe.
 */
public final class CudaDriverDevice implements Device {

  private final CUcontext context;
  private final String deviceName;
  private final Map<PtxKernel, CUfunction> functions = new HashMap<>();
  private final Map<Integer, CUdeviceptr> allocations = new LinkedHashMap<>();
  private int nextAllocation;
  /** Shared memory a block may have without asking (48 KiB); a kernel's dynamic share above it needs the attribute. */
  private static final int STATIC_SHARED_LIMIT = 48 * 1024;

  private CUstream capturing; // the stream launches are recorded on during capture; null otherwise

  private CudaDriverDevice(CUcontext context, String deviceName) {
    this.context = context;
    this.deviceName = deviceName;
  }

  /** Creates a context on device 0 and loads every module, or says why there is no device. */
  public static CudaDriverDevice open() throws NoDeviceException {
    return open(0);
  }

  /** Creates a context on device {@code index} and loads every module, or says why there is no such device. */
  public static CudaDriverDevice open(int index) throws NoDeviceException {
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
    if (index < 0 || index >= count[0]) {
      throw new NoDeviceException(CudaDevices.outOfRange(index, count[0]));
    }
    CUdevice device = new CUdevice();
    cuDeviceGet(device, index);
    byte[] name = new byte[256];
    cuDeviceGetName(name, name.length, device);
    CUcontext context = new CUcontext();
    cuCtxCreate(context, 0, device);
    CudaDriverDevice opened = new CudaDriverDevice(context, cString(name));
    try {
      Map<PtxModule, CUmodule> modules = new HashMap<>();
      for (PtxModule module : PtxModule.values()) {
        CUmodule loaded = new CUmodule();
        cuModuleLoadData(loaded, (module.ptx() + "\0").getBytes(StandardCharsets.UTF_8));
        modules.put(module, loaded);
      }
      for (PtxKernel kernel : PtxKernels.ALL) {
        CUfunction function = new CUfunction();
        cuModuleGetFunction(function, modules.get(kernel.module()), kernel.name());
        if (kernel.dynamicSharedBytes() > STATIC_SHARED_LIMIT) { // allowed up to 227 KiB on sm_90, when asked
          cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              kernel.dynamicSharedBytes());
        }
        opened.functions.put(kernel, function);
      }
    } catch (RuntimeException e) {
      opened.close();
      throw e;
    }
    return opened;
  }

  @Override
  public String name() {
    return deviceName;
  }

  @Override
  public DevicePointer allocate(long bytes) {
    refuseWhileCapturing("allocate");
    CUdeviceptr p = new CUdeviceptr();
    cuMemAlloc(p, Math.max(bytes, 1));
    int id = nextAllocation++;
    allocations.put(id, p);
    cuMemsetD8(p, (byte) 0, bytes);
    return new DevicePointer(id, 0);
  }

  @Override
  public void free(DevicePointer start) {
    refuseWhileCapturing("free");
    CUdeviceptr p = allocations.remove(start.allocation());
    if (p == null || start.byteOffset() != 0) {
      throw new IllegalArgumentException("free takes the start of a live buffer of this device, given " + start);
    }
    cuMemFree(p);
  }

  @Override
  public void freeAll() {
    List<CUdeviceptr> buffers = List.copyOf(allocations.values());
    allocations.clear(); // a failed free is not retried: after a sticky error none would succeed
    for (CUdeviceptr p : buffers) {
      cuMemFree(p);
    }
  }

  @Override
  public void copyToDevice(DevicePointer dst, float[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyHtoD(address(dst), Pointer.to(src).withByteOffset(4L * srcOffset), 4L * count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, int[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyHtoD(address(dst), Pointer.to(src).withByteOffset(4L * srcOffset), 4L * count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, short[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyHtoD(address(dst), Pointer.to(src).withByteOffset(2L * srcOffset), 2L * count);
  }

  @Override
  public void copyToDevice(DevicePointer dst, byte[] src, int srcOffset, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyHtoD(address(dst), Pointer.to(src).withByteOffset(srcOffset), count);
  }

  @Override
  public void copyToHost(float[] dst, int dstOffset, DevicePointer src, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOffset), address(src), 4L * count);
  }

  @Override
  public void copyToHost(short[] dst, int dstOffset, DevicePointer src, int count) {
    refuseWhileCapturing("a copy");
    cuMemcpyDtoH(Pointer.to(dst).withByteOffset(2L * dstOffset), address(src), 2L * count);
  }

  @Override
  public void launch(PtxKernel kernel, int gridX, int gridY, Object... args) {
    KernelArguments.check(kernel, gridX, gridY, args);
    Pointer[] pointers = new Pointer[args.length];
    for (int i = 0; i < args.length; i++) {
      pointers[i] = switch (args[i]) {
        case DevicePointer p -> Pointer.to(address(p));
        case Integer v -> Pointer.to(new int[] {v});
        case Float v -> Pointer.to(new float[] {v});
        default -> throw new IllegalStateException("checked above: " + args[i]);
      };
    }
    cuLaunchKernel(functions.get(kernel), gridX, gridY, 1, kernel.blockSize(), 1, 1, kernel.dynamicSharedBytes(),
        capturing,
        Pointer.to(pointers), null);
  }

  /**
   * Stream capture (driver API): the launches go to a stream of their own under
   * {@code cuStreamBeginCapture}, become a graph at {@code cuStreamEndCapture}, instantiated once;
   * a replay is one {@code cuGraphLaunch} on the default stream, ordered with everything else there.
   */
  @Override
  public DeviceGraph capture(Runnable launches) {
    refuseWhileCapturing("a capture");
    CUstream stream = new CUstream();
    cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
    CUgraph graph = new CUgraph();
    try {
      cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
      capturing = stream;
      try {
        launches.run();
      } finally {
        capturing = null;
        cuStreamEndCapture(stream, graph);
      }
      CUgraphExec exec = new CUgraphExec();
      cuGraphInstantiate(exec, graph, 0);
      return new DeviceGraph() {
        @Override
        public void replay() {
          refuseWhileCapturing("a replay");
          // JCuda's cuGraphLaunch refuses null for the default stream (cuLaunchKernel takes it).
          cuGraphLaunch(exec, CU_STREAM_LEGACY);
        }

        @Override
        public void close() {
          cuGraphExecDestroy(exec);
        }
      };
    } finally {
      cuGraphDestroy(graph);
      cuStreamDestroy(stream);
    }
  }

  private void refuseWhileCapturing(String what) {
    if (capturing != null) {
      throw new IllegalStateException(what + " inside a graph capture: only kernel launches can be captured");
    }
  }

  @Override
  public void synchronize() {
    cuCtxSynchronize();
  }

  /** A buffer of {@code count} 16-bit elements, each {@code bits} (weights whose values do not matter). */
  public DevicePointer filled16(long count, short bits) {
    DevicePointer p = allocate(2 * count);
    cuMemsetD16(address(p), bits, count);
    return p;
  }

  @Override
  public void copy(DevicePointer dst, DevicePointer src, long bytes) {
    refuseWhileCapturing("a copy");
    cuMemcpyDtoD(address(dst), address(src), bytes);
  }

  /**
   * Milliseconds per run of {@code work} (which queues device work on the default stream), measured
   * with CUDA events over {@code repeats} runs after one run to warm up.
   */
  public double millisecondsPerRun(int repeats, Runnable work) {
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

  @Override
  public void close() {
    try {
      freeAll();
    } finally {
      cuCtxDestroy(context);
    }
  }

  private CUdeviceptr address(DevicePointer p) {
    CUdeviceptr base = allocations.get(p.allocation());
    if (base == null) {
      throw new IllegalArgumentException("no live buffer " + p.allocation() + " on this device (freed, or another device's)");
    }
    return p.byteOffset() == 0 ? base : base.withByteOffset(p.byteOffset());
  }

  private static String cString(byte[] bytes) {
    int end = 0;
    while (end < bytes.length && bytes[end] != 0) {
      end++;
    }
    return new String(bytes, 0, end, StandardCharsets.US_ASCII);
  }
}
