package dev.sparsa.cpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Heap {@code float[]} scratch whose first element lies on a 64-byte boundary, so that the
 * micro-kernels' vector loads at multiples of 16 floats never straddle two cache lines (a 512-bit
 * load that does costs two on Intel cores: the dense f32 call was 4–9 % faster with aligned scratch
 * on a Xeon, unchanged on AMD Zen 5; docs/PERFORMANCE.md).
 *
 * <p>Java does not say where an array lies, so the address is read through the foreign linker (a
 * zero-length {@code memset} on the array, passed as a heap segment to a critical downcall, returns
 * its address). That needs native access ({@code --enable-native-access=ALL-UNNAMED}, or the
 * module's name); without it, or with {@code -Dsparsa.cpu.alignScratch=false}, arrays are plain
 * {@code new float[n]} and nothing else changes. The garbage collector may move an array later;
 * {@link #aligned} tells, and the owner allocates it again. Alignment never changes a result: the
 * same loads of the same values.
 */
final class AlignedArrays {
    /** The byte boundary the first element is placed on. */
    static final int BOUNDARY = 64;
    /** Header bytes before a primitive array's first element (compressed class pointers). */
    private static final long HEADER = 16;
    private static final MethodHandle MEMSET = memset();
    private static volatile Object sink;

    private AlignedArrays() {
    }

    /** Whether arrays are aligned (native access granted, a C library found, not switched off). */
    static boolean enabled() {
        return MEMSET != null;
    }

    /**
     * A zeroed array of {@code n} floats, aligned when {@linkplain #enabled() enabled} (a few
     * allocations may be needed; the unused ones are garbage), else a plain one.
     */
    static float[] allocate(int n) {
        float[] a = new float[n];
        if (MEMSET == null || n == 0) {
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
        return MEMSET == null || a.length == 0 || (address(a) & (BOUNDARY - 1)) == 0;
    }

    /** Keeps the filler from being optimised away. */
    private static void keep(Object o) {
        sink = o;
        sink = null;
    }

    private static long address(float[] a) {
        try {
            return ((MemorySegment) MEMSET.invokeExact(MemorySegment.ofArray(a), 0, 0L)).address();
        } catch (Throwable t) {
            throw new IllegalStateException("memset through the foreign linker failed", t);
        }
    }

    private static MethodHandle memset() {
        if (!Boolean.parseBoolean(System.getProperty("sparsa.cpu.alignScratch", "true"))
                || !AlignedArrays.class.getModule().isNativeAccessEnabled()) {
            return null;
        }
        try {
            Linker linker = Linker.nativeLinker();
            Optional<MemorySegment> f = linker.defaultLookup().find("memset");
            if (f.isEmpty()) {
                return null;
            }
            MethodHandle h = linker.downcallHandle(f.get(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), Linker.Option.critical(true));
            // a heap segment's address must come back as the array's, and a float array's first
            // element must lie on 8 bytes like the objects themselves (not so with compact object
            // headers, where it follows a 12-byte header and can never reach the boundary)
            float[] probe = new float[32];
            MemorySegment at = (MemorySegment) h.invokeExact(MemorySegment.ofArray(probe), 0, 0L);
            return at.address() != 0 && (at.address() & 7) == 0 ? h : null;
        } catch (Throwable t) {
            return null; // no linker on this platform: plain arrays
        }
    }
}
