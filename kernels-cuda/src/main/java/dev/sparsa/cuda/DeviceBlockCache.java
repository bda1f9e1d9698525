package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.util.ArrayDeque;
import java.util.Iterator;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

/**
 * Device memory blocks kept for reuse on one device, so that a loop of calls (the drop-in call's
 * staging buffers, the facade's outputs) does not pay {@code cuMemAlloc} and {@code cuMemFree} of
 * hundreds of megabytes each time. Sizes are rounded up to a size class (powers of two up to 2 MiB,
 * then multiples of 2 MiB) and a block is reused only for its own class. At most {@link #limit()}
 * bytes and {@link #MAX_BLOCKS} blocks stay cached; the least recently returned go first. When
 * {@code cuMemAlloc} runs out of memory the cache is emptied and the allocation tried once more.
 *
 * <p>The cache never synchronizes: whoever gives a block back guarantees that no queued work still
 * uses it (see {@link DeviceBuffer}). Thread-safe.
 */
final class DeviceBlockCache {
    /** Blocks kept at most. */
    static final int MAX_BLOCKS = 64;
    private static final long TWO_MIB = 2L << 20;

    private record Block(CUdeviceptr ptr, long size) {
    }

    private final CudaDevice device;
    private final long limit;
    /** Most recently returned first. */
    private final ArrayDeque<Block> free = new ArrayDeque<>();
    private long cachedBytes;

    /**
     * @param limit bytes kept cached at most ({@code 0} turns caching off)
     */
    DeviceBlockCache(CudaDevice device, long limit) {
        this.device = device;
        this.limit = Math.max(0, limit);
    }

    /** The size class of a request: what a block for it really holds. */
    static long sizeClass(long bytes) {
        if (bytes <= 512) {
            return 512;
        }
        if (bytes <= TWO_MIB) {
            return Long.highestOneBit(bytes - 1) << 1;
        }
        return (bytes + TWO_MIB - 1) / TWO_MIB * TWO_MIB;
    }

    long limit() {
        return limit;
    }

    synchronized long cachedBytes() {
        return cachedBytes;
    }

    /**
     * A block of at least {@code bytes} bytes: a cached one of the same class, else a new one.
     *
     * @return the block's pointer; its capacity is {@link #sizeClass(long)}
     * @throws CudaException if the device has not enough memory even after emptying the cache
     */
    CUdeviceptr take(long bytes) {
        long cls = sizeClass(bytes);
        synchronized (this) {
            for (Iterator<Block> it = free.iterator(); it.hasNext(); ) {
                Block b = it.next();
                if (b.size() == cls) {
                    it.remove();
                    cachedBytes -= cls;
                    return b.ptr();
                }
            }
        }
        device.makeCurrent();
        CUdeviceptr p = new CUdeviceptr();
        int r = cuMemAlloc(p, cls);
        if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            trim();
            device.makeCurrent();
            r = cuMemAlloc(p, cls);
        }
        Cuda.check(r, "cuMemAlloc(" + cls + " bytes)");
        return p;
    }

    /** Returns a block taken for {@code bytes} bytes; frees the oldest blocks beyond the limits. */
    void give(CUdeviceptr ptr, long bytes) {
        long cls = sizeClass(bytes);
        ArrayDeque<Block> evicted = new ArrayDeque<>();
        synchronized (this) {
            if (cls > limit) {
                evicted.add(new Block(ptr, cls));
            } else {
                free.addFirst(new Block(ptr, cls));
                cachedBytes += cls;
                while (cachedBytes > limit || free.size() > MAX_BLOCKS) {
                    Block b = free.removeLast();
                    cachedBytes -= b.size();
                    evicted.add(b);
                }
            }
        }
        release(evicted);
    }

    /** Frees every cached block. */
    void trim() {
        ArrayDeque<Block> all;
        synchronized (this) {
            all = new ArrayDeque<>(free);
            free.clear();
            cachedBytes = 0;
        }
        release(all);
    }

    private void release(ArrayDeque<Block> blocks) {
        if (blocks.isEmpty()) {
            return;
        }
        device.makeCurrent();
        for (Block b : blocks) {
            Cuda.check(cuMemFree(b.ptr()), "cuMemFree");
        }
    }
}
