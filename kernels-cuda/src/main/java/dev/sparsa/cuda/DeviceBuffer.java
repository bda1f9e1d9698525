package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;

import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory of a fixed size on the {@link CudaDevice}'s context, freed by {@link #close()}
 * (idempotent). Three kinds: plain {@code cuMemAlloc} memory (plans); blocks of the device's {@link
 * DeviceBlockCache} (tensors and staging buffers: closing gives the block back for reuse); and
 * memory of another library wrapped by its address, never freed here. Closing a cached block that a
 * caller held first waits for the device ({@code cuCtxSynchronize}, as {@code cuMemFree} does), so
 * that no queued work still uses it when it is handed out again; the backend's own staging buffers
 * are given back after their stream is synchronized, without that wait.
 *
 * <p>Host copies take any {@link MemorySegment}, heap or native, and go through the device's pinned
 * {@link HostStaging} (memory that another thread may free during the copy, a shared arena's, only
 * through Java's checked copies). Not thread-safe for concurrent close.
 */
public final class DeviceBuffer implements DeviceMemory, AutoCloseable {
    private enum Kind { OWNED, CACHED, CACHED_INTERNAL, FOREIGN }

    private final CudaDevice device;
    private final CUdeviceptr ptr;
    private final long bytes;
    private final Kind kind;
    private volatile boolean closed;

    /** Plain device memory of {@code bytes} bytes ({@code cuMemAlloc}), freed by {@link #close()}. */
    DeviceBuffer(CudaDevice device, long bytes) {
        this(device, allocate(device, bytes), bytes, Kind.OWNED);
    }

    private static CUdeviceptr allocate(CudaDevice device, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes: must be >= 0, got " + bytes);
        }
        CUdeviceptr p = new CUdeviceptr();
        device.makeCurrent();
        Cuda.check(cuMemAlloc(p, Math.max(bytes, 1)), "cuMemAlloc(" + bytes + " bytes)");
        return p;
    }

    private DeviceBuffer(CudaDevice device, CUdeviceptr ptr, long bytes, Kind kind) {
        this.device = device;
        this.ptr = ptr;
        this.bytes = bytes;
        this.kind = kind;
    }

    /**
     * A block of the device's cache for a caller (a tensor): closing it waits for the device, then
     * gives the block back.
     */
    static DeviceBuffer cached(CudaDevice device, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes: must be >= 0, got " + bytes);
        }
        return new DeviceBuffer(device, device.blocks().take(Math.max(bytes, 1)), bytes, Kind.CACHED);
    }

    /**
     * A block of the device's cache for the backend's own use; closing gives it back at once, so the
     * owner closes it only after the work using it has finished (its stream synchronized).
     */
    static DeviceBuffer scratch(CudaDevice device, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes: must be >= 0, got " + bytes);
        }
        return new DeviceBuffer(device, device.blocks().take(Math.max(bytes, 1)), bytes, Kind.CACHED_INTERNAL);
    }

    /**
     * Device memory that another library allocated on {@code device}'s context, by its address and
     * size; it is never freed here.
     *
     * @throws IllegalArgumentException if the address is 0 or the size negative
     */
    static DeviceBuffer foreign(CudaDevice device, long address, long bytes) {
        if (address == 0 || bytes < 0) {
            throw new IllegalArgumentException("memory: need a non-zero address and bytes >= 0, got address 0x"
                    + Long.toHexString(address) + " and " + bytes + " bytes");
        }
        // a pointer of value 0 offset by the address: JCuda passes native pointer + byte offset
        return new DeviceBuffer(device, (CUdeviceptr) new CUdeviceptr().withByteOffset(address), bytes, Kind.FOREIGN);
    }

    /** Size in bytes. */
    public long bytes() {
        return bytes;
    }

    /** The CUDA device this memory is on. */
    CudaDevice cudaDevice() {
        return device;
    }

    @Override
    public Device device() {
        return Device.cuda(device.ordinal());
    }

    @Override
    public long byteSize() {
        return bytes;
    }

    @Override
    public long address() {
        return Address.of(pointer());
    }

    @Override
    public void copyFromHost(MemorySegment src, long at) {
        copyFrom(src, at);
    }

    @Override
    public void copyToHost(MemorySegment dst, long at) {
        copyTo(dst, at);
    }

    @Override
    public void release() {
        close();
    }

    /** Reads the address out of a JCuda pointer (its native pointer plus its byte offset). */
    private static final class Address extends CUdeviceptr {
        private Address(CUdeviceptr p) {
            super(p);
        }

        static long of(CUdeviceptr p) {
            Address a = new Address(p);
            return a.getNativePointer() + a.getByteOffset();
        }
    }

    /** The device pointer (valid until {@link #close()}). */
    CUdeviceptr pointer() {
        ensureOpen();
        return ptr;
    }

    /** Device pointer {@code offset} bytes in. */
    CUdeviceptr pointer(long byteOffset) {
        ensureOpen();
        return byteOffset == 0 ? ptr : (CUdeviceptr) ptr.withByteOffset(byteOffset);
    }

    /** Copies {@code src} (all of it) to bytes {@code [at, at + src.byteSize())} of this buffer; returns when done. */
    public void copyFrom(MemorySegment src, long at) {
        checkRange(at, src.byteSize());
        if (src.byteSize() == 0) {
            return;
        }
        // on the legacy default stream: ordered after the work of every blocking stream, as cuMemcpy is
        CudaStream s = CudaStream.wrap(device, 0L);
        device.staging().upload(List.of(new HostStaging.Piece(src, pointer(at))), s);
        s.synchronize("host to device copy");
    }

    /** Copies bytes {@code [at, at + dst.byteSize())} of this buffer into {@code dst}; returns when done. */
    public void copyTo(MemorySegment dst, long at) {
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("dst: a read-only segment; a copy from the device would write through it");
        }
        checkRange(at, dst.byteSize());
        if (dst.byteSize() == 0) {
            return;
        }
        device.staging().download(List.of(new HostStaging.Piece(dst, pointer(at))), CudaStream.wrap(device, 0L));
    }

    /** Copies a Java int array to the start of this buffer. */
    void copyFrom(int[] src) {
        checkRange(0, 4L * src.length);
        device.makeCurrent();
        if (src.length > 0) {
            Cuda.check(cuMemcpyHtoD(ptr, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD");
        }
    }

    /** {@code n} ints from byte {@code at} of this buffer, copied synchronously (for tests and diagnostics). */
    int[] readInts(long at, int n) {
        checkRange(at, 4L * n);
        int[] r = new int[n];
        device.makeCurrent();
        if (n > 0) {
            Cuda.check(jcuda.driver.JCudaDriver.cuMemcpyDtoH(Pointer.to(r), pointer(at), 4L * n), "cuMemcpyDtoH");
        }
        return r;
    }

    /** Copies a Java float array to the start of this buffer. */
    void copyFrom(float[] src) {
        checkRange(0, 4L * src.length);
        device.makeCurrent();
        if (src.length > 0) {
            Cuda.check(cuMemcpyHtoD(ptr, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD");
        }
    }

    /**
     * Sets every byte to {@code value} on the legacy default stream (work on blocking streams queued
     * later runs after it).
     */
    public void fill(byte value) {
        device.makeCurrent();
        Cuda.check(cuMemsetD8(pointer(), value, Math.max(bytes, 1)), "cuMemsetD8");
    }

    /** Queues setting every byte to {@code value} on {@code stream}. */
    void fill(byte value, CudaStream stream) {
        device.makeCurrent();
        Cuda.check(cuMemsetD8Async(pointer(), value, Math.max(bytes, 1), stream.handle()), "cuMemsetD8Async");
    }

    private void checkRange(long at, long n) {
        ensureOpen();
        if (at < 0 || n < 0 || at + n > bytes) {
            throw new IllegalArgumentException("range: [" + at + ", " + (at + n) + ") outside a device buffer of "
                    + bytes + " bytes");
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("device buffer: already closed");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            switch (kind) {
                case OWNED -> {
                    device.makeCurrent();
                    Cuda.check(cuMemFree(ptr), "cuMemFree");
                }
                case CACHED -> {
                    device.makeCurrent();
                    Cuda.check(cuCtxSynchronize(), "cuCtxSynchronize", "freeing a device buffer");
                    device.blocks().give(ptr, Math.max(bytes, 1));
                }
                case CACHED_INTERNAL -> device.blocks().give(ptr, Math.max(bytes, 1));
                case FOREIGN -> {
                }
            }
        }
    }
}
