package dev.sparsa.tensor;

import dev.sparsa.internal.ArrayAddresses;
import java.lang.foreign.MemorySegment;

/**
 * Zeroed heap memory for host tensors, a Java array whose used part starts on a 64-byte boundary
 * where the array's address can be read: the array is allocated 64 bytes longer and the segment
 * is the slice that starts on the boundary. A 512-bit load at a multiple of 16 floats then never
 * straddles two cache lines, and a decode step that streams a cache's rows reads whole lines.
 *
 * <p>The address is read by {@link ArrayAddresses}, which needs native access ({@code
 * --enable-native-access=ALL-UNNAMED}, or {@code dev.sparsa.core}); without it, or with {@code
 * -Dsparsa.tensor.alignHostArrays=false}, the segment is the whole of a plain array. A garbage
 * collector may move an array later (G1 does not move the large arrays of a KV cache); the slice then
 * merely loses its alignment. Alignment never changes a value read or written.
 */
final class HostArrays {
    /** The byte boundary the segment's first byte is placed on. */
    static final int BOUNDARY = 64;
    private static final boolean ALIGN = ArrayAddresses.available()
            && Boolean.parseBoolean(System.getProperty("sparsa.tensor.alignHostArrays", "true"));

    private HostArrays() {
    }

    /** Whether segments are placed on the boundary (native access granted and not switched off). */
    static boolean aligned() {
        return ALIGN;
    }

    /**
     * A zeroed heap segment of {@code elements} values of {@code dtype}, on the boundary when
     * {@link #aligned()}.
     *
     * @throws IllegalArgumentException if the elements do not fit a Java array
     */
    static MemorySegment zeroed(DType dtype, int elements) {
        int size = dtype.byteSize();
        if (elements > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(elements + " elements do not fit a Java array");
        }
        // the few arrays too close to the largest a JVM allocates stay whole
        int pad = !ALIGN || elements > Integer.MAX_VALUE - 16 - BOUNDARY ? 0 : BOUNDARY / size;
        MemorySegment whole = switch (dtype) {
            case F32 -> MemorySegment.ofArray(new float[elements + pad]);
            case F16, BF16 -> MemorySegment.ofArray(new short[elements + pad]);
            case E4M3 -> MemorySegment.ofArray(new byte[elements + pad]);
        };
        if (pad == 0) {
            return whole;
        }
        long skip = (BOUNDARY - (ArrayAddresses.of(whole) & (BOUNDARY - 1))) & (BOUNDARY - 1);
        return whole.asSlice(skip, (long) elements * size);
    }
}
