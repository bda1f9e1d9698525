package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;

import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory of a fixed size on the {@link CudaDevice}'s context (cuMemAlloc, 256-byte aligned),
 * freed by {@link #close()} (idempotent). Copies to and from host memory take any {@link
 * MemorySegment}, heap or native, in chunks under 2 GiB: native segments go straight through their
 * {@link ByteBuffer} view, heap segments through a JCuda pointer to their Java array (a heap segment
 * over a {@code float[]} has no byte-buffer view), read-only heap views through a direct staging
 * buffer. Not thread-safe for concurrent close.
 */
public final class DeviceBuffer implements DeviceMemory, AutoCloseable {
    /** Largest piece one host copy moves (well under ByteBuffer's 2 GiB limit). */
    static final long CHUNK = 256L << 20;

    private final CudaDevice device;
    private final CUdeviceptr ptr;
    private final long bytes;
    /** False for memory of another library wrapped by its address: never freed here. */
    private final boolean owned;
    private volatile boolean closed;

    DeviceBuffer(CudaDevice device, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes: must be >= 0, got " + bytes);
        }
        this.device = device;
        this.bytes = bytes;
        this.ptr = new CUdeviceptr();
        this.owned = true;
        device.makeCurrent();
        Cuda.check(cuMemAlloc(ptr, Math.max(bytes, 1)), "cuMemAlloc(" + bytes + " bytes)");
    }

    private DeviceBuffer(CudaDevice device, long address, long bytes) {
        this.device = device;
        this.bytes = bytes;
        // a pointer of value 0 offset by the address: JCuda passes native pointer + byte offset
        this.ptr = (CUdeviceptr) new CUdeviceptr().withByteOffset(address);
        this.owned = false;
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
        return new DeviceBuffer(device, address, bytes);
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

    /**
     * A JCuda pointer to the Java array behind a heap segment, at the segment's start (JCuda pins the
     * array for the copy), or null for native segments and read-only views.
     */
    private static Pointer arrayPointer(MemorySegment seg) {
        if (seg.isNative() || seg.isReadOnly()) {
            return null;
        }
        Object base = seg.heapBase().orElse(null);
        Pointer p = switch (base) {
            case float[] f -> Pointer.to(f);
            case short[] h -> Pointer.to(h);
            case byte[] b -> Pointer.to(b);
            case int[] i -> Pointer.to(i);
            case long[] l -> Pointer.to(l);
            case double[] d -> Pointer.to(d);
            case null, default -> null;
        };
        // for a heap segment, address() is its byte offset into the array
        return p == null ? null : p.withByteOffset(seg.address());
    }

    /** An unstarted thread: a segment confined to some thread is never accessible by it. */
    private static final Thread NO_OWNER = Thread.ofPlatform().unstarted(() -> { });

    /**
     * Whether a copy with {@code seg} must go through a staging buffer by Java's checked copies
     * rather than hand its address to the driver: heap memory (not pinned here), and native memory
     * that another thread may free during the copy (a shared arena's; closing it then makes the
     * checked copy throw instead of the driver reading or writing freed memory). A confined segment
     * can only be closed by its owner, which is the thread copying.
     */
    private static boolean mustStage(MemorySegment seg) {
        return !seg.isNative() || seg.isAccessibleBy(NO_OWNER);
    }

    /** Copies {@code src} (all of it) to bytes {@code [at, at + src.byteSize())} of this buffer. */
    public void copyFrom(MemorySegment src, long at) {
        checkRange(at, src.byteSize());
        device.makeCurrent();
        Pointer array = arrayPointer(src);
        if (array != null) {
            for (long done = 0; done < src.byteSize(); done += CHUNK) {
                long n = Math.min(CHUNK, src.byteSize() - done);
                Cuda.check(cuMemcpyHtoD(pointer(at + done), array.withByteOffset(done), n), "cuMemcpyHtoD");
            }
            return;
        }
        boolean staged = mustStage(src);
        ByteBuffer stage = staged ? ByteBuffer.allocateDirect((int) Math.min(CHUNK, Math.max(src.byteSize(), 1)))
                .order(ByteOrder.nativeOrder()) : null;
        for (long done = 0; done < src.byteSize(); done += CHUNK) {
            long n = Math.min(CHUNK, src.byteSize() - done);
            MemorySegment piece = src.asSlice(done, n);
            ByteBuffer bb;
            if (staged) {
                MemorySegment.ofBuffer(stage).asSlice(0, n).copyFrom(piece);
                bb = stage;
            } else {
                bb = piece.asByteBuffer();
            }
            Cuda.check(cuMemcpyHtoD(pointer(at + done), Pointer.to(bb), n), "cuMemcpyHtoD");
        }
    }

    /** Copies bytes {@code [at, at + dst.byteSize())} of this buffer into {@code dst}. */
    public void copyTo(MemorySegment dst, long at) {
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("dst: a read-only segment; a copy from the device would write through it");
        }
        checkRange(at, dst.byteSize());
        device.makeCurrent();
        Pointer array = arrayPointer(dst);
        if (array != null) {
            for (long done = 0; done < dst.byteSize(); done += CHUNK) {
                long n = Math.min(CHUNK, dst.byteSize() - done);
                Cuda.check(cuMemcpyDtoH(array.withByteOffset(done), pointer(at + done), n), "cuMemcpyDtoH");
            }
            return;
        }
        boolean staged = mustStage(dst);
        ByteBuffer stage = staged ? ByteBuffer.allocateDirect((int) Math.min(CHUNK, Math.max(dst.byteSize(), 1)))
                .order(ByteOrder.nativeOrder()) : null;
        for (long done = 0; done < dst.byteSize(); done += CHUNK) {
            long n = Math.min(CHUNK, dst.byteSize() - done);
            MemorySegment piece = dst.asSlice(done, n);
            if (staged) {
                Cuda.check(cuMemcpyDtoH(Pointer.to(stage), pointer(at + done), n), "cuMemcpyDtoH");
                piece.copyFrom(MemorySegment.ofBuffer(stage).asSlice(0, n));
            } else {
                Cuda.check(cuMemcpyDtoH(Pointer.to(piece.asByteBuffer()), pointer(at + done), n), "cuMemcpyDtoH");
            }
        }
    }

    /** Copies a Java int array to the start of this buffer. */
    void copyFrom(int[] src) {
        checkRange(0, 4L * src.length);
        device.makeCurrent();
        if (src.length > 0) {
            Cuda.check(cuMemcpyHtoD(ptr, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD");
        }
    }

    /** Copies a Java float array to the start of this buffer. */
    void copyFrom(float[] src) {
        checkRange(0, 4L * src.length);
        device.makeCurrent();
        if (src.length > 0) {
            Cuda.check(cuMemcpyHtoD(ptr, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD");
        }
    }

    /** Sets every byte to {@code value}. */
    public void fill(byte value) {
        device.makeCurrent();
        Cuda.check(cuMemsetD8(pointer(), value, Math.max(bytes, 1)), "cuMemsetD8");
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
            if (owned) {
                device.makeCurrent();
                Cuda.check(cuMemFree(ptr), "cuMemFree");
            }
        }
    }
}
