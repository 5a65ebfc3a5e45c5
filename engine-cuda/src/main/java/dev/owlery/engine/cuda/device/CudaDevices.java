package dev.owlery.engine.cuda.device;

import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;

import java.nio.charset.StandardCharsets;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Finds CUDA devices through JCuda's driver API ({@code cuInit}, {@code cuDeviceGetCount},
 * {@code cuDeviceGetName}, {@code cuDeviceTotalMem}, then {@code cuMemGetInfo} inside a context
 * made for the purpose). Loading JCuda's native binding needs the NVIDIA driver's {@code
 * libcuda.so.1}; on a machine without it every probe answers {@link #NO_DRIVER} instead of
 * throwing.
 */
public final class CudaDevices {

  /** The reason given where the NVIDIA driver library is not installed. */
  public static final String NO_DRIVER = "no CUDA device: the NVIDIA driver (libcuda.so.1) is not installed on this "
      + "machine, or not on the dynamic loader's path; use --device cpu or run on a machine with an NVIDIA GPU";

  private static final int NAME_BYTES = 256;

  private CudaDevices() {}

  /**
   * Looks for CUDA device {@code index}: its name, compute capability and memory, total and free
   * for a context of this process.
   *
   * @throws IllegalArgumentException when {@code index} is negative
   */
  public static DeviceProbe probe(int index) {
    if (index < 0) {
      throw new IllegalArgumentException("a CUDA device index must be >= 0. Given: " + index);
    }
    String notLoaded = DriverBinding.LOAD_FAILURE;
    if (notLoaded != null) {
      return new DeviceProbe.Unavailable(notLoaded);
    }
    int rc = JCudaDriver.cuInit(0);
    if (rc == CUresult.CUDA_ERROR_NO_DEVICE) {
      return new DeviceProbe.Unavailable("no CUDA device: the NVIDIA driver is installed but sees no GPU (cuInit: "
          + "CUDA_ERROR_NO_DEVICE); check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --device cpu");
    }
    if (rc != CUresult.CUDA_SUCCESS) {
      return failed("cuInit", rc);
    }
    int[] count = new int[1];
    rc = JCudaDriver.cuDeviceGetCount(count);
    if (rc != CUresult.CUDA_SUCCESS) {
      return failed("cuDeviceGetCount", rc);
    }
    if (index >= count[0]) {
      return new DeviceProbe.Unavailable(outOfRange(index, count[0]));
    }
    CUdevice device = new CUdevice();
    rc = JCudaDriver.cuDeviceGet(device, index);
    if (rc != CUresult.CUDA_SUCCESS) {
      return failed("cuDeviceGet", rc);
    }
    byte[] name = new byte[NAME_BYTES];
    int[] major = new int[1];
    int[] minor = new int[1];
    long[] total = new long[1];
    if ((rc = JCudaDriver.cuDeviceGetName(name, NAME_BYTES, device)) != CUresult.CUDA_SUCCESS
        || (rc = JCudaDriver.cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device))
            != CUresult.CUDA_SUCCESS
        || (rc = JCudaDriver.cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device))
            != CUresult.CUDA_SUCCESS
        || (rc = JCudaDriver.cuDeviceTotalMem(total, device)) != CUresult.CUDA_SUCCESS) {
      return failed("reading the properties of cuda:" + index, rc);
    }
    long[] free = new long[1];
    CUcontext context = new CUcontext();
    rc = JCudaDriver.cuCtxCreate(context, 0, device);
    if (rc != CUresult.CUDA_SUCCESS) {
      return failed("cuCtxCreate on cuda:" + index, rc);
    }
    try {
      rc = JCudaDriver.cuMemGetInfo(free, new long[1]);
      if (rc != CUresult.CUDA_SUCCESS) {
        return failed("cuMemGetInfo on cuda:" + index, rc);
      }
    } finally {
      JCudaDriver.cuCtxDestroy(context);
    }
    return new DeviceProbe.Found(
        new CudaDevice(index, cString(name), major[0] + "." + minor[0], total[0], free[0]));
  }

  /** The reason given for {@code cuda:index} on a machine whose driver sees {@code count} devices. */
  public static String outOfRange(int index, int count) {
    return "no CUDA device cuda:%d: the driver sees %d device%s%s".formatted(index, count, count == 1 ? "" : "s",
        count == 0 ? "" : " (cuda:0 to cuda:%d)".formatted(count - 1));
  }

  private static DeviceProbe.Unavailable failed(String call, int rc) {
    return new DeviceProbe.Unavailable("no CUDA device: %s failed with %s".formatted(call, CUresult.stringFor(rc)));
  }

  private static String cString(byte[] bytes) {
    int end = 0;
    while (end < bytes.length && bytes[end] != 0) {
      end++;
    }
    return new String(bytes, 0, end, StandardCharsets.UTF_8);
  }

  /**
   * JCuda's driver binding, loaded once. A failed load is remembered as a reason: the JVM answers a
   * second use of a class whose initializer failed with {@code NoClassDefFoundError}, not the cause.
   */
  private static final class DriverBinding {
    /** Null once the binding is loaded; else why it is not. */
    static final String LOAD_FAILURE = load();

    private static String load() {
      try {
        JCudaDriver.setExceptionsEnabled(false);
        return null;
      } catch (UnsatisfiedLinkError e) {
        String message = String.valueOf(e.getMessage());
        if (message.contains("libcuda.so")) {
          return NO_DRIVER;
        }
        return "no CUDA device: JCuda's driver binding did not load (" + message.lines().findFirst().orElse("") + ")";
      }
    }
  }
}
