package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.CU_MEMHOSTALLOC_PORTABLE;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicInteger;
import jcuda.Pointer;
import jcuda.driver.CUresult;

/**
 * Page-locked ("pinned") host memory for the outputs of calls on host tensors, so that the copy
 * from the device lands straight in the tensor the caller gets, at the copy engine's full rate,
 * with nothing cleared beforehand (the kernels write every row) and no staging copy after.
 *
 * <p>Lifetime: each tensor's memory is a block under a shared {@link Arena} of its own. {@link
 * Tensor#close()} closes that arena (later reads and writes through the tensor, its views or its
 * segment throw {@link IllegalStateException}) and gives the block back; a tensor never closed gives
 * it back once nothing can reach the arena's scope any more (no tensor, view or segment of it), as
 * {@code Arena.ofAuto()} frees its memory, through a {@link Cleaner}. Blocks given back are kept
 * for the next outputs of their size class (that of {@link DeviceBlockCache}, at least a page), so
 * a loop of calls pays {@code cuMemHostAlloc} once; {@link #trim()} frees the kept ones.
 *
 * <p>Bound: the blocks in use and kept together hold at most {@link #limit()} bytes (by default
 * {@link #defaultLimit()}: the smaller of 4 GiB and an eighth of the host's memory; {@code
 * -Dsparsa.cuda.pinnedOutputBytes=N}, 0 turns pinned outputs off). A request that does not fit
 * after freeing kept blocks asks the garbage collector once for outputs nobody holds any more
 * ({@code System.gc()}, as the JDK does for direct buffers) and waits up to {@link #COLLECT_WAIT_MS}
 * ms for them to come back. If none came, later requests skip that step until a block comes back.
 * A request that does not fit, or that the host cannot pin, gets null: the caller allocates on the
 * heap instead.
 *
 * <p>Thread-safe. {@link #use(MemorySegment)} gives the device's copies which host memory is such a
 * block, and holds the block for them: a tensor closed by another thread while the copy engine
 * reads or writes its memory gives the block back only once the copy is done, so that the memory is
 * neither freed nor handed to another output under the copy.
 */
final class PinnedOutputs {
    /** Kept blocks at most, whatever their bytes. */
    static final int MAX_KEPT = 64;
    /** How long a request waits for outputs the collector found unreachable. */
    static final long COLLECT_WAIT_MS = 100;
    private static final long PAGE = 4096;

    /** Allocates and frees page-locked host memory: the CUDA driver's, or a stand-in in tests. */
    interface HostMemory {
        /** The address of {@code bytes} bytes of page-locked memory, or 0 when the host pins no more. */
        long allocate(long bytes);

        /** Frees a block {@link #allocate} returned. */
        void free(long address);
    }

    /** {@code cuMemHostAlloc} (portable: every context may copy to and from it) and {@code cuMemFreeHost}, each with the device's context bound. */
    static HostMemory cuda(CudaDevice device) {
        return new HostMemory() {
            @Override
            public long allocate(long bytes) {
                device.makeCurrent();
                Pointer p = new Pointer();
                int r = cuMemHostAlloc(p, bytes, CU_MEMHOSTALLOC_PORTABLE);
                if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
                    return 0;
                }
                Cuda.check(r, "cuMemHostAlloc(" + bytes + " bytes)");
                return JCudaHandles.address(p);
            }

            @Override
            public void free(long address) {
                // the cleaner's thread too: the driver frees page-locked memory only under a context
                device.makeCurrent();
                Cuda.check(cuMemFreeHost(JCudaHandles.hostPointer(address)), "cuMemFreeHost");
            }
        };
    }

    private static final Cleaner CLEANER = Cleaner.create(r -> {
        Thread t = new Thread(r, "sparsa-cuda-pinned-outputs");
        t.setDaemon(true);
        return t;
    });
    /** The blocks in use, of every pool: address to capacity. */
    private static final ConcurrentSkipListMap<Long, Long> IN_USE = new ConcurrentSkipListMap<>();
    /** The leases of the blocks that open tensors own, of every pool, by address. */
    private static final ConcurrentSkipListMap<Long, Lease> LEASES = new ConcurrentSkipListMap<>();

    private record Block(long address, long size) {
    }

    private final HostMemory memory;
    private final Runnable collector;
    private long limit;
    /** Most recently given back first. */
    private final ArrayDeque<Block> kept = new ArrayDeque<>();
    private long keptBytes;
    private long inUseBytes;
    /** Blocks given back so far (a request that asked the collector waits for this to move). */
    private long givenBack;
    /** A collection was asked for and brought nothing back, and no block came back since. */
    private boolean collectingIsFutile;

    /** Outputs from the device's pinned memory, bounded by {@code sparsa.cuda.pinnedOutputBytes}. */
    PinnedOutputs(CudaDevice device) {
        this(cuda(device), Long.getLong("sparsa.cuda.pinnedOutputBytes", defaultLimit()), System::gc);
    }

    /**
     * @param limit     bytes in use and kept at most
     * @param collector asks the garbage collector for unreachable outputs ({@code System::gc})
     */
    PinnedOutputs(HostMemory memory, long limit, Runnable collector) {
        this.memory = memory;
        this.limit = Math.max(0, limit);
        this.collector = collector;
    }

    /** The smaller of 4 GiB and an eighth of the host's physical memory (4 GiB when that is unknown). */
    static long defaultLimit() {
        long cap = 4L << 30;
        try {
            if (java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                    instanceof com.sun.management.OperatingSystemMXBean os && os.getTotalMemorySize() > 0) {
                return Math.min(cap, os.getTotalMemorySize() / 8);
            }
        } catch (LinkageError | RuntimeException e) {
            // java.management or jdk.management left out of the runtime: the fixed cap
        }
        return cap;
    }

    /** The size class of a request: what its block holds. */
    static long sizeClass(long bytes) {
        return Math.max(PAGE, DeviceBlockCache.sizeClass(bytes));
    }

    /**
     * True when {@code segment} lies wholly inside an output block in use whose tensor is still open,
     * so that the device may copy to and from it directly.
     */
    static boolean holds(MemorySegment segment) {
        if (!segment.isNative() || !segment.scope().isAlive() || segment.byteSize() == 0) {
            return false;
        }
        long at = segment.address();
        Map.Entry<Long, Long> block = IN_USE.floorEntry(at);
        return block != null && at + segment.byteSize() <= block.getKey() + block.getValue();
    }

    /**
     * A hold on the block of an open output tensor that wholly contains {@code segment}, for a copy
     * that hands the memory to the driver by address, or null when no such block contains it (the
     * copy then goes through Java's checked copies). Until the hold is closed, closing the tensor
     * (which ends Java's access at once) does not give the block back.
     */
    static Use use(MemorySegment segment) {
        if (!segment.isNative() || !segment.scope().isAlive() || segment.byteSize() == 0) {
            return null;
        }
        long at = segment.address();
        Map.Entry<Long, Lease> e = LEASES.floorEntry(at);
        if (e == null || at + segment.byteSize() > e.getKey() + e.getValue().block.size()) {
            return null;
        }
        Lease lease = e.getValue();
        return lease.acquire() ? new Use(lease) : null;
    }

    /** A copy's hold on an output block ({@link #use}); closing it twice is harmless. */
    static final class Use implements AutoCloseable {
        private final Lease lease;
        private final AtomicInteger closed = new AtomicInteger();

        private Use(Lease lease) {
            this.lease = lease;
        }

        @Override
        public void close() {
            if (closed.compareAndSet(0, 1)) {
                lease.release();
            }
        }
    }

    synchronized long limit() {
        return limit;
    }

    /** Changes the bound for later requests (benchmarks and tests); kept blocks beyond it are freed. */
    void setLimit(long bytes) {
        List<Block> evicted = new ArrayList<>();
        synchronized (this) {
            limit = Math.max(0, bytes);
            collectingIsFutile = false;
            evict(0, evicted);
        }
        free(evicted);
    }

    /** Bytes of pinned memory held: blocks in use plus blocks kept. */
    synchronized long heldBytes() {
        return inUseBytes + keptBytes;
    }

    synchronized long inUseBytes() {
        return inUseBytes;
    }

    synchronized long keptBytes() {
        return keptBytes;
    }

    /**
     * A contiguous host tensor over pinned memory, not cleared, or null when the bound or the host
     * leaves none for it (or the shape is empty or invalid: the heap allocation reports that).
     *
     * @throws CudaException when the driver fails for another reason than a lack of memory
     */
    Tensor allocate(DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        if (dtype == null || layout == null || batch < 1 || heads < 1 || seq < 1 || dim < 1) {
            return null;
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(Math.multiplyExact(Math.multiplyExact((long) batch * heads, (long) seq), (long) dim),
                    (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            return null;
        }
        Block block = take(bytes);
        if (block == null) {
            return null;
        }
        Arena arena;
        MemorySegment segment;
        try {
            arena = Arena.ofShared();
            segment = MemorySegment.ofAddress(block.address()).reinterpret(bytes, arena, null);
        } catch (RuntimeException | Error e) {
            give(block);
            throw e;
        }
        Lease lease = new Lease(this, block);
        // registered on the scope, which every view and slice of the segment reaches; the action holds
        // neither the arena nor the scope, else they would never become unreachable
        lease.cleanable = CLEANER.register(arena.scope(), lease::collected);
        LEASES.put(block.address(), lease);
        try {
            return Tensor.onHost(segment, () -> lease.close(arena), dtype, layout, batch, heads, seq, dim);
        } catch (RuntimeException | Error e) {
            lease.close(arena);
            throw e;
        }
    }

    /** One tensor's block: given back once, by {@code close} or by the cleaner. */
    private static final class Lease {
        private static final int OPEN = 0;
        private static final int CLOSING = 1;
        private static final int DONE = 2;
        private final PinnedOutputs pool;
        private final Block block;
        private final AtomicInteger state = new AtomicInteger(OPEN);
        private volatile Cleaner.Cleanable cleanable;
        /** Copies in flight that hold the block ({@link PinnedOutputs#use}); guarded by this. */
        private int uses;
        /** The tensor is done but a copy still holds the block: the last release gives it back. */
        private boolean pending;

        Lease(PinnedOutputs pool, Block block) {
            this.pool = pool;
            this.block = block;
        }

        /** Tensor.close: ends every access through the arena, then gives the block back. */
        void close(Arena arena) {
            if (!state.compareAndSet(OPEN, CLOSING)) {
                return;
            }
            try {
                arena.close();
            } catch (IllegalStateException e) {
                // another thread is inside an access of the segment right now: the tensor stays open
                state.set(OPEN);
                throw e;
            }
            state.set(DONE);
            finish();
            Cleaner.Cleanable c = cleanable;
            if (c != null) {
                c.clean();
            }
        }

        /** The cleaner: nothing reaches the memory any more. */
        void collected() {
            if (state.compareAndSet(OPEN, DONE)) {
                finish();
            }
        }

        /** A copy's hold: only while the tensor is open. */
        synchronized boolean acquire() {
            if (state.get() != OPEN) {
                return false;
            }
            uses++;
            return true;
        }

        void release() {
            boolean give;
            synchronized (this) {
                uses--;
                give = pending && uses == 0;
                pending = pending && !give;
            }
            if (give) {
                giveBack();
            }
        }

        /** The tensor is done: the block goes back now, or when the last copy holding it ends. */
        private void finish() {
            synchronized (this) {
                if (uses > 0) {
                    pending = true;
                    return;
                }
            }
            giveBack();
        }

        private void giveBack() {
            LEASES.remove(block.address(), this);
            pool.give(block);
        }
    }

    /** A block of the request's class: a kept one, a new one within the bound, or null. */
    private Block take(long bytes) {
        long cls = sizeClass(bytes);
        boolean collected = false;
        while (true) {
            List<Block> evicted = new ArrayList<>();
            Block reused = null;
            boolean reserved = false;
            boolean collect = false;
            long seen;
            synchronized (this) {
                if (cls > limit) {
                    return null;
                }
                seen = givenBack;
                for (Iterator<Block> it = kept.iterator(); it.hasNext(); ) {
                    Block b = it.next();
                    if (b.size() == cls) {
                        it.remove();
                        keptBytes -= cls;
                        reused = b;
                        break;
                    }
                }
                if (reused != null) {
                    inUseBytes += cls;
                    IN_USE.put(reused.address(), cls);
                    return reused;
                }
                evict(cls, evicted);
                if (inUseBytes + cls <= limit) {
                    inUseBytes += cls;
                    reserved = true;
                } else {
                    collect = !collected && !collectingIsFutile;
                }
            }
            free(evicted);
            if (reserved) {
                return allocateReserved(cls);
            }
            if (!collect) {
                return null;
            }
            collected = true;
            if (!collectAndWait(seen)) {
                synchronized (this) {
                    collectingIsFutile = true;
                }
                return null;
            }
        }
    }

    /**
     * Frees kept blocks, oldest first, until {@code more} bytes fit under the bound beside what is
     * held and at most {@link #MAX_KEPT} blocks are kept.
     */
    private void evict(long more, List<Block> evicted) {
        while (!kept.isEmpty() && (inUseBytes + keptBytes + more > limit || kept.size() > MAX_KEPT)) {
            Block b = kept.removeLast();
            keptBytes -= b.size();
            evicted.add(b);
        }
    }

    /** A new block of {@code cls} bytes, already counted in use; null (and uncounted) when the host pins no more. */
    private Block allocateReserved(long cls) {
        long address;
        try {
            address = memory.allocate(cls);
            if (address == 0 && trim() > 0) {
                address = memory.allocate(cls);
            }
        } catch (RuntimeException | Error e) {
            synchronized (this) {
                inUseBytes -= cls;
            }
            throw e;
        }
        if (address == 0) {
            synchronized (this) {
                inUseBytes -= cls;
            }
            return null;
        }
        IN_USE.put(address, cls);
        return new Block(address, cls);
    }

    /** Asks for a collection and waits until a block comes back or the wait is over; true if one came. */
    private boolean collectAndWait(long seen) {
        collector.run();
        long deadline = System.nanoTime() + COLLECT_WAIT_MS * 1_000_000;
        synchronized (this) {
            boolean interrupted = false;
            try {
                for (long left; givenBack == seen && (left = deadline - System.nanoTime()) > 0; ) {
                    try {
                        wait(Math.max(1, left / 1_000_000));
                    } catch (InterruptedException e) {
                        interrupted = true;
                        break;
                    }
                }
            } finally {
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
            return givenBack != seen;
        }
    }

    /** Takes a block back for reuse; frees the oldest kept blocks beyond the bounds. */
    private void give(Block block) {
        List<Block> evicted = new ArrayList<>();
        IN_USE.remove(block.address());
        synchronized (this) {
            inUseBytes -= block.size();
            kept.addFirst(block);
            keptBytes += block.size();
            evict(0, evicted);
            givenBack++;
            collectingIsFutile = false;
            notifyAll();
        }
        free(evicted);
    }

    /** Frees every kept block; returns the bytes freed. */
    long trim() {
        List<Block> all;
        long bytes;
        synchronized (this) {
            all = new ArrayList<>(kept);
            bytes = keptBytes;
            kept.clear();
            keptBytes = 0;
        }
        free(all);
        return bytes;
    }

    private void free(List<Block> blocks) {
        for (Block b : blocks) {
            memory.free(b.address());
        }
    }
}
