package dev.sparsa.bench;

import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Bytes the JVM allocates on its heap while a timed step runs, and whether that many say the step's
 * time is not its kernels' own.
 *
 * <p>A decode step's kernels allocate little (kilobytes for dense, under a megabyte for top-k at 32k
 * keys). Where a loop written with the Vector API runs without the JIT's intrinsics (interpreted,
 * compiled by the first tier, or compiled by C2 with a vector call left in it), every vector it loads
 * or computes becomes an object, and the step allocates several times the bytes it reads: such a step
 * runs several times slower for as long as that code stays. The count comes from HotSpot's
 * {@code com.sun.management.ThreadMXBean#getTotalThreadAllocatedBytes} (every thread, so work on other
 * threads during a step counts too). Thread-safe.
 */
public final class StepAllocation {
    /** Steps under this many bytes are never flagged, whatever they read. */
    public static final long FLAG_FLOOR_BYTES = 8L << 20;
    /** Steps that allocate more than their bytes read divided by this are flagged (above the floor). */
    public static final long FLAG_BYTES_READ_DIVISOR = 4;

    private final LongSupplier total;

    private StepAllocation(LongSupplier total) {
        this.total = total;
    }

    /** The running JVM's count (where the JVM does not keep it, {@link #total()} is −1). */
    public static StepAllocation ofThisJvm() {
        if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean mx
                && mx.isThreadAllocatedMemorySupported() && mx.isThreadAllocatedMemoryEnabled()) {
            return new StepAllocation(mx::getTotalThreadAllocatedBytes);
        }
        return new StepAllocation(() -> -1);
    }

    /** Reads the count from {@code total}; for tests. */
    public static StepAllocation of(LongSupplier total) {
        return new StepAllocation(total);
    }

    /** Bytes allocated by all threads since the JVM started, or −1 where the JVM does not count them. */
    public long total() {
        return total.getAsLong();
    }

    /**
     * A one-line warning for a row whose median step allocated {@code bytesPerStep} while it reads
     * {@code bytesRead}, or null when that is normal: over {@link #FLAG_FLOOR_BYTES} and over a
     * {@link #FLAG_BYTES_READ_DIVISOR}th of the bytes read. Unknown counts (negative) are never flagged.
     */
    public static String warning(String row, long bytesPerStep, long bytesRead) {
        if (bytesPerStep <= FLAG_FLOOR_BYTES || bytesPerStep <= bytesRead / FLAG_BYTES_READ_DIVISOR) {
            return null;
        }
        return String.format(Locale.ROOT, "sparsa decode: warning: %s allocated %.1f MB a step while reading %.1f MB:"
                + " its Vector API loops ran without the JIT's intrinsics (not yet compiled, or compiled with a vector"
                + " call left in them), so its time is not the kernels'; run again (docs/decode.md, \"Allocation per"
                + " step\")", row, bytesPerStep / 1e6, bytesRead / 1e6);
    }
}
