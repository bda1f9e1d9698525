package dev.sparsa.cpu;

import dev.sparsa.internal.ArrayAddresses;
import java.lang.foreign.MemorySegment;

/**
 * Heap {@code float[]} scratch whose first element lies on a 64-byte boundary, so that the
 * micro-kernels' vector loads at multiples of 16 floats never straddle two cache lines (a 512-bit
 * load that does costs two on Intel cores: the dense f32 call was 4–9 % faster with aligned scratch
 * on a Xeon, unchanged on AMD Zen 5; docs/PERFORMANCE.md).
 *
 * <p>The address is read by {@link ArrayAddresses}, which needs native access for Sparsa's core
 * ({@code --enable-native-access=ALL-UNNAMED}, or {@code dev.sparsa.core}); without it, or with {@code
 * -Dsparsa.cpu.alignScratch=false}, arrays are plain {@code new float[n]} and nothing else changes.
 * The garbage collector may move an array later; {@link #aligned} tells, and the owner allocates it
 * again. Alignment never changes a result: the same loads of the same values.
 */
final class AlignedArrays {
    /** The byte boundary the first element is placed on. */
    static final int BOUNDARY = 64;
    /** Header bytes before a primitive array's first element (compressed class pointers). */
    private static final long HEADER = 16;
    private static final boolean ENABLED = enable();
    private static volatile Object sink;

    private AlignedArrays() {
    }

    /** Whether arrays are aligned (native access granted, a C library found, not switched off). */
    static boolean enabled() {
        return ENABLED;
    }

    /**
     * A zeroed array of {@code n} floats, aligned when {@linkplain #enabled() enabled} (a few
     * allocations may be needed; the unused ones are garbage), else a plain one.
     */
    static float[] allocate(int n) {
        float[] a = new float[n];
        if (!ENABLED || n == 0) {
            return a;
        }
        long at = address(a);
        // objects follow one another where they are allocated: after the array come the objects
        // that reading its address allocated (junk, measured), then a filler, then the next
        // candidate, and the filler's size puts the candidate on the boundary. Arrays too large for
        // the thread's buffer are placed after one another outside it: when a candidate lands right
        // after its predecessor, the filler went elsewhere, and the next filler is made as large as
        // the array so that it is placed where the array is
        long junk = 0;
        boolean outside = false;
        for (int tries = 0; tries < 16 && (at & (BOUNDARY - 1)) != 0; tries++) {
            long end = align8(at + 4L * n);
            int base = outside ? (int) align8(4L * n) : 0;
            int pad = 0;
            while (((end + junk + align8(HEADER + base + pad) + HEADER) & (BOUNDARY - 1)) != 0) {
                pad += 8;
            }
            keep(new byte[base + pad]);
            a = new float[n];
            long next = address(a);
            long gap = next - end - HEADER;
            outside = gap == 0;
            junk = Math.max(0, gap - align8(HEADER + base + pad));
            at = next;
        }
        return a;
    }

    private static long align8(long x) {
        return (x + 7) & ~7L;
    }

    /** Whether {@code a}'s first element is on the boundary now (always true when not enabled). */
    static boolean aligned(float[] a) {
        return !ENABLED || a.length == 0 || (address(a) & (BOUNDARY - 1)) == 0;
    }

    /** Keeps the filler from being optimised away. */
    private static void keep(Object o) {
        sink = o;
        sink = null;
    }

    private static long address(float[] a) {
        return ArrayAddresses.of(MemorySegment.ofArray(a));
    }

    /**
     * Whether scratch is aligned: switched on, addresses readable, and a float array's first element
     * on 8 bytes like the objects themselves (not so with compact object headers, where it follows a
     * 12-byte header and can never reach the boundary).
     */
    private static boolean enable() {
        if (!Boolean.parseBoolean(System.getProperty("sparsa.cpu.alignScratch", "true"))
                || !ArrayAddresses.available()) {
            return false;
        }
        long at = address(new float[32]);
        return (at & 7) == 0;
    }
}
