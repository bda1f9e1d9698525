package dev.sparsa.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.CyclicBarrier;

/**
 * The machine's memory bandwidth as a plain copy sees it: each of {@code threads} threads copies its
 * own buffer of {@code bytesPerThread} (far larger than the caches) into another with {@link
 * MemorySegment#copy}. Reported as bytes read plus bytes written per second (the STREAM convention),
 * the median of the repetitions after one warm-up copy that also faults the pages in.
 */
public final class MemoryCopy implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] src;
    private final MemorySegment[] dst;
    private final int threads;
    private final long bytes;

    /**
     * @throws IllegalArgumentException if {@code threads < 1} or {@code bytesPerThread < 1}
     */
    public MemoryCopy(int threads, long bytesPerThread) {
        if (threads < 1 || bytesPerThread < 1) {
            throw new IllegalArgumentException("threads and bytesPerThread: must be >= 1, got " + threads + " and "
                    + bytesPerThread);
        }
        this.threads = threads;
        this.bytes = bytesPerThread;
        src = new MemorySegment[threads];
        dst = new MemorySegment[threads];
        for (int t = 0; t < threads; t++) {
            src[t] = arena.allocate(bytesPerThread, 64);
            dst[t] = arena.allocate(bytesPerThread, 64);
            src[t].fill((byte) (t + 1));
        }
    }

    /** Copies once on the calling thread (thread 0's buffers): the JMH benchmark's unit of work. */
    public void copyOnce(int thread) {
        MemorySegment.copy(src[thread], 0, dst[thread], 0, bytes);
    }

    /** Bytes one {@link #copyOnce} reads plus writes. */
    public long bytesMovedPerCopy() {
        return 2 * bytes;
    }

    /** GB/s (10^9 bytes) of all threads copying at once, median of {@code reps} timed rounds. */
    public double gbPerSec(int reps) {
        double[] rates = new double[reps];
        for (int r = -1; r < reps; r++) {
            long nanos = round();
            if (r >= 0) {
                rates[r] = 2.0 * bytes * threads / nanos;
            }
        }
        Arrays.sort(rates);
        return rates[reps / 2];
    }

    private long round() {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers[t] = new Thread(() -> {
                try {
                    start.await();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
                copyOnce(id);
            });
            workers[t].start();
        }
        try {
            start.await();
            long t0 = System.nanoTime();
            for (Thread w : workers) {
                w.join();
            }
            return System.nanoTime() - t0;
        } catch (Exception e) {
            throw new IllegalStateException("copy benchmark interrupted", e);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
