package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * One CUDA device and its primary context ({@code cuDevicePrimaryCtxRetain}), which the driver shares
 * with every other library in the process. {@link #makeCurrent()} binds it to the calling thread;
 * every class of this package calls it before touching the device, so any thread may launch.
 * {@link #close()} releases the retained context once. Thread-safe.
 */
public final class CudaDevice implements AutoCloseable {
    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final String name;
    private final int major;
    private final int minor;
    private final int driverVersion;
    private final int multiprocessors;
    private final int maxSharedPerBlockOptin;
    private final int deviceCount;
    private final long totalMemory;
    private volatile DeviceBlockCache blocks;
    private volatile HostStaging staging;
    private volatile PinnedOutputs pinnedOutputs;
    private volatile boolean closed;

    /**
     * Opens device {@code ordinal}.
     *
     * @throws CudaException if the driver refuses (no device, driver too old, ...)
     * @throws IllegalArgumentException if the ordinal is not a device here
     * @throws UnsatisfiedLinkError or NoClassDefFoundError where JCuda's natives or the driver are missing
     */
    public CudaDevice(int ordinal) {
        JCudaDriver.setExceptionsEnabled(false);
        Cuda.check(cuInit(0), "cuInit");
        int[] count = new int[1];
        Cuda.check(cuDeviceGetCount(count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new IllegalArgumentException("device: ordinal " + ordinal + " outside the " + count[0]
                    + " CUDA device(s) found");
        }
        this.ordinal = ordinal;
        this.deviceCount = count[0];
        Cuda.check(cuDeviceGet(device, ordinal), "cuDeviceGet");
        byte[] nm = new byte[256];
        Cuda.check(cuDeviceGetName(nm, nm.length, device), "cuDeviceGetName");
        int len = 0;
        while (len < nm.length && nm[len] != 0) {
            len++;
        }
        this.name = new String(nm, 0, len, java.nio.charset.StandardCharsets.US_ASCII);
        this.major = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.minor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.maxSharedPerBlockOptin = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        long[] mem = new long[1];
        Cuda.check(cuDeviceTotalMem(mem, device), "cuDeviceTotalMem");
        this.totalMemory = mem[0];
        int[] v = new int[1];
        Cuda.check(cuDriverGetVersion(v), "cuDriverGetVersion");
        this.driverVersion = v[0];
        Cuda.check(cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
        makeCurrent();
    }

    private int attribute(int attr) {
        int[] v = new int[1];
        Cuda.check(cuDeviceGetAttribute(v, attr, device), "cuDeviceGetAttribute(" + attr + ")");
        return v[0];
    }

    /** Binds the primary context to the calling thread (cheap; call before every driver call). */
    public void makeCurrent() {
        if (closed) {
            throw new IllegalStateException("CUDA device " + ordinal + ": already closed");
        }
        Cuda.check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    public int ordinal() {
        return ordinal;
    }

    /** How many CUDA devices the driver showed when this one was opened. */
    public int deviceCount() {
        return deviceCount;
    }

    public String name() {
        return name;
    }

    /** Compute capability as {@code major * 10 + minor} (90 for Hopper). */
    public int computeCapability() {
        return major * 10 + minor;
    }

    /** The driver's CUDA version, e.g. 13000 for CUDA 13.0. */
    public int driverVersion() {
        return driverVersion;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    /** The device's memory in bytes. */
    public long totalMemory() {
        return totalMemory;
    }

    /**
     * Device memory blocks kept for reuse by tensors and staging buffers on this device: at most
     * {@code -Dsparsa.cuda.cacheBytes} bytes (default an eighth of the device's memory; 0 turns the
     * cache off).
     */
    DeviceBlockCache blocks() {
        DeviceBlockCache b = blocks;
        if (b == null) {
            synchronized (this) {
                if (blocks == null) {
                    blocks = new DeviceBlockCache(this, Long.getLong("sparsa.cuda.cacheBytes", totalMemory / 8));
                }
                b = blocks;
            }
        }
        return b;
    }

    /** Bytes of device memory cached for reuse (freed tensors and staging buffers). */
    public long cachedBytes() {
        return blocks == null ? 0 : blocks.cachedBytes();
    }

    /**
     * Frees the device memory cached for reuse (as PyTorch's {@code empty_cache}) and the page-locked
     * host blocks kept for outputs of host calls.
     */
    public void releaseCachedMemory() {
        if (blocks != null) {
            blocks.trim();
        }
        if (pinnedOutputs != null) {
            pinnedOutputs.trim();
        }
    }

    /**
     * Page-locked host memory for the outputs of calls on host tensors (see {@link PinnedOutputs}):
     * at most {@code -Dsparsa.cuda.pinnedOutputBytes} bytes, by default the smaller of 4 GiB and an
     * eighth of the host's memory.
     */
    PinnedOutputs pinnedOutputs() {
        PinnedOutputs p = pinnedOutputs;
        if (p == null) {
            synchronized (this) {
                if (pinnedOutputs == null) {
                    pinnedOutputs = new PinnedOutputs(this);
                }
                p = pinnedOutputs;
            }
        }
        return p;
    }

    /**
     * Bytes of page-locked host memory held for outputs of calls on host tensors: blocks of output
     * tensors still open (or not yet collected) and blocks kept for reuse.
     */
    public long pinnedOutputBytes() {
        return pinnedOutputs == null ? 0 : pinnedOutputs.heldBytes();
    }

    /** The pinned host buffers that copies between the host and this device go through. */
    HostStaging staging() {
        HostStaging s = staging;
        if (s == null) {
            synchronized (this) {
                if (staging == null) {
                    staging = new HostStaging(this);
                }
                s = staging;
            }
        }
        return s;
    }

    /** Most dynamic shared memory one block may opt into, in bytes. */
    public int maxSharedPerBlockOptin() {
        return maxSharedPerBlockOptin;
    }

    @Override
    public String toString() {
        return name + " (sm_" + major + minor + ", " + multiprocessors + " SMs, driver CUDA " + driverVersion / 1000 + "."
                + (driverVersion % 1000) / 10 + ")";
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.check(cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease");
        }
    }
}
