package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.CU_MEMHOSTALLOC_PORTABLE;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemHostRegister;
import static jcuda.driver.JCudaDriver.cuMemHostUnregister;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * Copies between host memory (Java arrays or native segments) and one device through page-locked
 * ("pinned") buffers, which the copy engines read and write at full speed (pageable memory is staged
 * by the driver at a third of that or less).
 *
 * <p>A transfer runs as a pipeline over chunks of {@link #chunkBytes()} in a ring of {@link #SLOTS}
 * pinned slots. Host to device: each copier thread takes the next chunk, waits until its slot's last
 * DMA is done, and copies the chunk from the Java array (or native segment) into the slot, while the
 * calling thread queues the DMAs in chunk order as chunks arrive; device to host, the calling thread
 * queues the DMAs as slots come free and the copiers copy each slot out once its DMA is done. Copier
 * threads never wait for each other, only for their slot, so copying and DMA overlap. Small chunks
 * keep the slots in the processor's cache. The pinned memory is bounded: at most {@link #MAX_RINGS}
 * rings per device (concurrent transfers beyond that wait for a ring), allocated on first use with
 * {@code cuMemHostAlloc} and kept for the process. Transfers under {@link #DIRECT_BYTES} go straight
 * through the driver. Pieces in the pinned memory of an open output tensor ({@link PinnedOutputs#use})
 * skip the ring: the copy engine reads and writes them in place, asynchronously, and the transfer
 * returns once the stream has got past those copies (the output's block held until then, so that
 * closing the tensor meanwhile gives it back only after them).
 *
 * <p>The driver is handed the address of host memory only where no other thread can free it during
 * the copy: memory of a confined arena (owned by the calling thread, the only one that may close
 * it). Everything else (heap arrays, and native memory of shared, automatic or global arenas) is
 * read and written by Java's checked copies, so that a shared arena closed mid-transfer makes the
 * transfer throw {@link IllegalStateException} instead of the driver touching freed memory.
 *
 * <p>Native segments of a confined arena may instead be page-locked in place ({@code
 * cuMemHostRegister}) for the transfer ({@code -Dsparsa.cuda.registerHost=true}); registering costs
 * about as much as copying, so it pays only for memory registered once and reused, which a call
 * cannot know: staging is the default.
 *
 * <p>System properties: {@code sparsa.cuda.stagingThreads} (copier threads, default
 * min(8, processors / 2), at least 1), {@code sparsa.cuda.stagingChunk} (bytes per chunk, default
 * 2 MiB).
 */
final class HostStaging {
    /** Pinned slots per ring. */
    static final int SLOTS = 16;
    /** Rings per device at most. */
    static final int MAX_RINGS = 2;
    /** Smaller transfers go through the driver directly. */
    static final long DIRECT_BYTES = 256 << 10;

    /** One contiguous piece of a transfer: {@code host.byteSize()} bytes at device address {@code device}. */
    record Piece(MemorySegment host, CUdeviceptr device) {
    }

    /** A thread that is never started: segments it may not access are confined to their owner thread. */
    private static final Thread OTHER = new Thread(() -> { });

    /**
     * Whether the driver may read or write {@code seg} at its address: native memory that only the
     * calling thread can access, hence free (a confined arena's). Memory other threads can reach may
     * be freed by one of them during the copy (a shared arena's), and heap arrays move.
     */
    private static boolean driverMayAddress(MemorySegment seg) {
        return seg.isNative() && !seg.isAccessibleBy(OTHER);
    }

    /** True when every piece's memory may be read by copier threads (not a confined arena's). */
    private static boolean shareable(List<Piece> pieces) {
        for (Piece p : pieces) {
            if (!p.host().isAccessibleBy(OTHER)) {
                return false;
            }
        }
        return true;
    }

    private final CudaDevice device;
    private final long chunk;
    private volatile int threads;
    private volatile boolean registerNative;
    private final BlockingQueue<Ring> idle = new ArrayBlockingQueue<>(MAX_RINGS);
    private final AtomicInteger rings = new AtomicInteger();
    private volatile ExecutorService copiers;

    /** Staging with the settings of the system properties. */
    HostStaging(CudaDevice device) {
        this(device, Long.getLong("sparsa.cuda.stagingChunk", 2L << 20), Integer.getInteger("sparsa.cuda.stagingThreads",
                Math.min(8, Runtime.getRuntime().availableProcessors() / 2)));
        this.registerNative = Boolean.getBoolean("sparsa.cuda.registerHost");
    }

    /** Staging in chunks of {@code chunk} bytes (at least 1 MiB, rounded down to 4 KiB) with {@code threads} copiers. */
    HostStaging(CudaDevice device, long chunk, int threads) {
        this.device = device;
        this.threads = Math.max(1, threads);
        this.chunk = Math.max(1L << 20, chunk) & ~4095L;
    }

    long chunkBytes() {
        return chunk;
    }

    int threads() {
        return threads;
    }

    /** Copier threads for later transfers (benchmarks compare counts). */
    void setThreads(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("threads: must be >= 1, got " + n);
        }
        synchronized (this) {
            threads = n;
            ExecutorService old = copiers;
            copiers = null;
            if (old != null) {
                old.shutdown();
            }
        }
    }

    /** Whether native segments are registered in place instead of staged (benchmarks compare both). */
    void setRegisterNative(boolean register) {
        registerNative = register;
    }

    boolean registerNative() {
        return registerNative;
    }

    /**
     * Queues the copies of {@code pieces} from the host to the device on {@code stream}. When it
     * returns the host memory may change (every byte is in pinned memory or on the device); the
     * DMAs may still run, ordered before later work on the stream.
     */
    void upload(List<Piece> pieces, CudaStream stream) {
        device.makeCurrent();
        List<Piece> staged = new ArrayList<>();
        List<Registered> registered = new ArrayList<>();
        List<PinnedOutputs.Use> held = new ArrayList<>();
        boolean synced = false;
        try {
            for (Piece p : pieces) {
                long n = p.host().byteSize();
                if (n == 0) {
                    continue;
                }
                PinnedOutputs.Use use = PinnedOutputs.use(p.host());
                if (use != null) {
                    held.add(use);
                    Cuda.check(cuMemcpyHtoDAsync(p.device(), JCudaHandles.hostPointer(p.host().address()), n,
                            stream.handle()), "cuMemcpyHtoDAsync");
                } else if (n < DIRECT_BYTES) {
                    direct(p, true);
                } else if (registerNative && driverMayAddress(p.host())) {
                    registered.add(register(p, true, stream));
                } else {
                    staged.add(p);
                }
            }
            if (!staged.isEmpty()) {
                Ring ring = ring();
                try {
                    ring.upload(staged, stream);
                } finally {
                    idle.add(ring);
                }
            }
            if (!held.isEmpty()) {
                // the host memory may change once this returns: the in-place copies must be done
                stream.synchronize();
                synced = true;
            }
        } finally {
            release(held, stream, synced);
            unregister(registered, stream);
            Reference.reachabilityFence(pieces);
        }
    }

    /**
     * Copies {@code pieces} from the device to the host after the work queued on {@code stream};
     * returns when the host memory holds them.
     */
    void download(List<Piece> pieces, CudaStream stream) {
        for (Piece p : pieces) {
            if (p.host().isReadOnly()) {
                throw new IllegalArgumentException("host: a read-only segment; a copy from the device would write through it");
            }
        }
        device.makeCurrent();
        List<Piece> staged = new ArrayList<>();
        List<Registered> registered = new ArrayList<>();
        List<PinnedOutputs.Use> held = new ArrayList<>();
        boolean waited = false;
        boolean synced = false;
        try {
            for (Piece p : pieces) {
                long n = p.host().byteSize();
                if (n == 0) {
                    continue;
                }
                PinnedOutputs.Use use = PinnedOutputs.use(p.host());
                if (use != null) {
                    // straight into the output's page-locked memory, no staging slot
                    held.add(use);
                    Cuda.check(cuMemcpyDtoHAsync(JCudaHandles.hostPointer(p.host().address()), p.device(), n,
                            stream.handle()), "cuMemcpyDtoHAsync");
                } else if (n < DIRECT_BYTES) {
                    if (!waited) {
                        stream.synchronize();
                        waited = true;
                    }
                    direct(p, false);
                } else if (registerNative && driverMayAddress(p.host())) {
                    registered.add(register(p, false, stream));
                } else {
                    staged.add(p);
                }
            }
            if (!staged.isEmpty()) {
                Ring ring = ring();
                try {
                    ring.download(staged, stream);
                } finally {
                    idle.add(ring);
                }
            }
            if (!held.isEmpty()) {
                stream.synchronize();
                synced = true;
            }
        } finally {
            release(held, stream, synced);
            unregister(registered, stream);
            // the segments keep the output blocks from the cleaner until the copies into them are done
            Reference.reachabilityFence(pieces);
        }
    }

    /**
     * A synchronous pageable copy for small pieces (the stream was synchronized before a download),
     * through a Java array unless the driver may address the memory.
     */
    private static void direct(Piece p, boolean toDevice) {
        long n = p.host().byteSize();
        MemorySegment h = p.host();
        Pointer hp = driverMayAddress(h) ? Pointer.to(h.asByteBuffer()) : null;
        byte[] tmp = null;
        if (hp == null) {
            tmp = new byte[(int) n];
            if (toDevice) {
                MemorySegment.copy(h, 0, MemorySegment.ofArray(tmp), 0, n);
            }
            hp = Pointer.to(tmp);
        }
        if (toDevice) {
            Cuda.check(cuMemcpyHtoD(p.device(), hp, n), "cuMemcpyHtoD");
        } else {
            Cuda.check(cuMemcpyDtoH(hp, p.device(), n), "cuMemcpyDtoH");
            if (tmp != null) {
                MemorySegment.copy(MemorySegment.ofArray(tmp), 0, h, 0, n);
            }
        }
    }

    /**
     * Ends the holds on output blocks once the stream is past the copies that use them (after a
     * failure too: a tensor closed meanwhile gives its block back only then).
     */
    private static void release(List<PinnedOutputs.Use> held, CudaStream stream, boolean synced) {
        if (held.isEmpty()) {
            return;
        }
        try {
            if (!synced) {
                stream.synchronize();
            }
        } catch (RuntimeException e) {
            // the call's own failure is the one to report
        } finally {
            held.forEach(PinnedOutputs.Use::close);
        }
    }

    /** A native piece page-locked for one transfer. */
    private record Registered(List<MemorySegment> parts) {
    }

    private Registered register(Piece p, boolean toDevice, CudaStream stream) {
        List<MemorySegment> parts = new ArrayList<>();
        long n = p.host().byteSize();
        for (long at = 0; at < n; at += 1L << 30) {
            MemorySegment part = p.host().asSlice(at, Math.min(1L << 30, n - at));
            Pointer hp = Pointer.to(part.asByteBuffer());
            Cuda.check(cuMemHostRegister(hp, part.byteSize(), 0), "cuMemHostRegister");
            parts.add(part);
            CUdeviceptr d = (CUdeviceptr) p.device().withByteOffset(at);
            if (toDevice) {
                Cuda.check(cuMemcpyHtoDAsync(d, hp, part.byteSize(), stream.handle()), "cuMemcpyHtoDAsync");
            } else {
                Cuda.check(cuMemcpyDtoHAsync(hp, d, part.byteSize(), stream.handle()), "cuMemcpyDtoHAsync");
            }
        }
        return new Registered(parts);
    }

    private void unregister(List<Registered> registered, CudaStream stream) {
        if (registered.isEmpty()) {
            return;
        }
        // the DMAs read or write the registered pages until the stream gets past them
        stream.synchronize();
        for (Registered r : registered) {
            for (MemorySegment part : r.parts()) {
                Cuda.check(cuMemHostUnregister(Pointer.to(part.asByteBuffer())), "cuMemHostUnregister");
            }
        }
    }

    private Ring ring() {
        Ring r = idle.poll();
        if (r != null) {
            return r;
        }
        if (rings.incrementAndGet() <= MAX_RINGS) {
            try {
                return new Ring();
            } catch (RuntimeException e) {
                rings.decrementAndGet();
                throw e;
            }
        }
        rings.decrementAndGet();
        try {
            return idle.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a pinned staging buffer", e);
        }
    }

    /**
     * Frees the pinned buffers of idle rings and stops the copier threads (a device's own staging
     * lives as long as the process; tests close the ones they make).
     */
    void close() {
        Ring r;
        while ((r = idle.poll()) != null) {
            r.free();
            rings.decrementAndGet();
        }
        setThreads(threads);
    }

    private ExecutorService copiers() {
        ExecutorService e = copiers;
        if (e == null) {
            synchronized (this) {
                e = copiers;
                if (e == null) {
                    AtomicInteger n = new AtomicInteger();
                    e = Executors.newFixedThreadPool(threads, r -> {
                        Thread t = new Thread(r, "sparsa-cuda-staging-" + n.incrementAndGet());
                        t.setDaemon(true);
                        return t;
                    });
                    copiers = e;
                }
            }
        }
        return e;
    }

    /** {@link #SLOTS} pinned buffers of one chunk each, with an event per slot. */
    private final class Ring {
        private final Pointer[] pinned = new Pointer[SLOTS];
        private final MemorySegment[] slot = new MemorySegment[SLOTS];
        private final CUevent[] done = new CUevent[SLOTS];

        Ring() {
            device.makeCurrent();
            for (int i = 0; i < SLOTS; i++) {
                pinned[i] = new Pointer();
                Cuda.check(cuMemHostAlloc(pinned[i], chunk, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(" + chunk + " bytes)");
                slot[i] = MemorySegment.ofBuffer(pinned[i].getByteBuffer(0, chunk));
                done[i] = new CUevent();
                Cuda.check(cuEventCreate(done[i], CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
            }
        }

        void free() {
            device.makeCurrent();
            for (int i = 0; i < SLOTS; i++) {
                Cuda.check(cuMemFreeHost(pinned[i]), "cuMemFreeHost");
                Cuda.check(cuEventDestroy(done[i]), "cuEventDestroy");
            }
        }

        /**
         * Host to device. Copier {@code c} waits until the DMA of chunk {@code c − SLOTS} (the slot's
         * last user) is queued and finished, fills the slot and flags the chunk; this thread queues
         * the DMAs in chunk order as the flags come. Returns once every DMA has finished, so the ring
         * is free again.
         */
        void upload(List<Piece> pieces, CudaStream stream) {
            List<long[]> chunks = chunks(pieces);
            int n = chunks.size();
            if (!shareable(pieces)) {
                // memory of a confined arena: only this thread may copy it
                for (int c = 0; c < n; c++) {
                    int s = c % SLOTS;
                    if (c >= SLOTS) {
                        Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
                    }
                    long[] ch = chunks.get(c);
                    MemorySegment.copy(pieces.get((int) ch[0]).host(), ch[1], slot[s], 0, ch[2]);
                    CUdeviceptr d = (CUdeviceptr) pieces.get((int) ch[0]).device().withByteOffset(ch[1]);
                    Cuda.check(cuMemcpyHtoDAsync(d, pinned[s], ch[2], stream.handle()), "cuMemcpyHtoDAsync");
                    Cuda.check(cuEventRecord(done[s], stream.handle()), "cuEventRecord");
                }
                for (int s = 0; s < Math.min(n, SLOTS); s++) {
                    Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
                }
                return;
            }
            Flags copied = new Flags(n);
            Flags queued = new Flags(n);
            Copiers work = new Copiers(n, c -> {
                int s = c % SLOTS;
                if (c >= SLOTS) {
                    queued.await(c - SLOTS);
                    device.makeCurrent();
                    Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
                }
                long[] ch = chunks.get(c);
                MemorySegment.copy(pieces.get((int) ch[0]).host(), ch[1], slot[s], 0, ch[2]);
                copied.set(c);
            });
            try {
                for (int c = 0; c < n; c++) {
                    copied.await(c, work);
                    long[] ch = chunks.get(c);
                    int s = c % SLOTS;
                    CUdeviceptr d = (CUdeviceptr) pieces.get((int) ch[0]).device().withByteOffset(ch[1]);
                    Cuda.check(cuMemcpyHtoDAsync(d, pinned[s], ch[2], stream.handle()), "cuMemcpyHtoDAsync");
                    Cuda.check(cuEventRecord(done[s], stream.handle()), "cuEventRecord");
                    queued.set(c);
                }
            } catch (RuntimeException | Error e) {
                work.finish(queued, e);
                throw e;
            }
            work.finish(queued, null);
            for (int s = 0; s < Math.min(n, SLOTS); s++) {
                Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
            }
        }

        /**
         * Device to host. This thread queues the DMA of chunk {@code c} once chunk {@code c − SLOTS}
         * has been copied out of the slot; copier {@code c} waits for its DMA and copies the slot
         * into the host memory. Returns when every chunk is in host memory.
         */
        void download(List<Piece> pieces, CudaStream stream) {
            List<long[]> chunks = chunks(pieces);
            int n = chunks.size();
            if (!shareable(pieces)) {
                // memory of a confined arena: only this thread may copy into it
                for (int c = 0; c < n + SLOTS; c++) {
                    if (c >= SLOTS) {
                        int done0 = c - SLOTS;
                        int s = done0 % SLOTS;
                        Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
                        long[] ch = chunks.get(done0);
                        MemorySegment.copy(slot[s], 0, pieces.get((int) ch[0]).host(), ch[1], ch[2]);
                    }
                    if (c < n) {
                        int s = c % SLOTS;
                        long[] ch = chunks.get(c);
                        CUdeviceptr d = (CUdeviceptr) pieces.get((int) ch[0]).device().withByteOffset(ch[1]);
                        Cuda.check(cuMemcpyDtoHAsync(pinned[s], d, ch[2], stream.handle()), "cuMemcpyDtoHAsync");
                        Cuda.check(cuEventRecord(done[s], stream.handle()), "cuEventRecord");
                    }
                }
                return;
            }
            Flags copied = new Flags(n);
            Flags queued = new Flags(n);
            Copiers work = new Copiers(n, c -> {
                int s = c % SLOTS;
                queued.await(c);
                device.makeCurrent();
                Cuda.check(cuEventSynchronize(done[s]), "cuEventSynchronize", "staging copy");
                long[] ch = chunks.get(c);
                MemorySegment.copy(slot[s], 0, pieces.get((int) ch[0]).host(), ch[1], ch[2]);
                copied.set(c);
            });
            try {
                for (int c = 0; c < n; c++) {
                    if (c >= SLOTS) {
                        copied.await(c - SLOTS, work);
                    }
                    long[] ch = chunks.get(c);
                    int s = c % SLOTS;
                    CUdeviceptr d = (CUdeviceptr) pieces.get((int) ch[0]).device().withByteOffset(ch[1]);
                    Cuda.check(cuMemcpyDtoHAsync(pinned[s], d, ch[2], stream.handle()), "cuMemcpyDtoHAsync");
                    Cuda.check(cuEventRecord(done[s], stream.handle()), "cuEventRecord");
                    queued.set(c);
                }
                for (int c = Math.max(0, n - SLOTS); c < n; c++) {
                    copied.await(c, work);
                }
            } catch (RuntimeException | Error e) {
                work.finish(queued, e);
                throw e;
            }
            work.finish(queued, null);
        }

        /** The chunks of a transfer: {piece, offset, length}. */
        private List<long[]> chunks(List<Piece> pieces) {
            List<long[]> chunks = new ArrayList<>();
            for (int i = 0; i < pieces.size(); i++) {
                long n = pieces.get(i).host().byteSize();
                for (long at = 0; at < n; at += chunk) {
                    chunks.add(new long[] {i, at, Math.min(chunk, n - at)});
                }
            }
            return chunks;
        }
    }

    /** One flag per chunk, awaited by spinning briefly and then sleeping in short naps. */
    private static final class Flags {
        private final AtomicIntegerArray set;

        Flags(int n) {
            set = new AtomicIntegerArray(Math.max(n, 1));
        }

        void set(int i) {
            set.set(i, 1);
        }

        void await(int i) {
            await(i, null);
        }

        /** Waits for flag {@code i}; gives up with the copiers' failure if they failed. */
        void await(int i, Copiers work) {
            for (int spin = 0; set.get(i) == 0; spin++) {
                if (work != null) {
                    work.rethrow();
                }
                if (spin < 20_000) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(5_000);
                }
                if (Thread.interrupted()) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted during a staged copy");
                }
            }
        }
    }

    /** The copier threads of one transfer: each takes the next chunk index until all are taken. */
    private final class Copiers {
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();
        private final CountDownLatch finished;
        private final int n;

        Copiers(int n, IntConsumer step) {
            this.n = n;
            int t = Math.max(1, Math.min(threads, n));
            finished = new CountDownLatch(t);
            ExecutorService pool = copiers();
            for (int i = 0; i < t; i++) {
                pool.execute(() -> {
                    try {
                        for (int c; failure.get() == null && (c = next.getAndIncrement()) < n; ) {
                            step.accept(c);
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        finished.countDown();
                    }
                });
            }
        }

        void rethrow() {
            Throwable e = failure.get();
            if (e instanceof RuntimeException r) {
                throw r;
            }
            if (e instanceof Error err) {
                throw err;
            }
            if (e != null) {
                throw new IllegalStateException("staging copy failed", e);
            }
        }

        /**
         * Waits for the copiers and rethrows their failure. {@code failed} is this thread's own
         * failure (or null): the copiers then stop taking chunks, and every chunk is marked queued so
         * that none waits for a DMA that will never come.
         */
        void finish(Flags queued, Throwable failed) {
            if (failed != null) {
                failure.compareAndSet(null, failed);
                for (int c = 0; c < n; c++) {
                    queued.set(c);
                }
            }
            boolean interrupted = false;
            while (true) {
                try {
                    finished.await();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            if (failed == null) {
                rethrow();
            }
        }
    }
}
