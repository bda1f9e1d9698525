package dev.sparsa.cpu;

import dev.sparsa.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Widens e4m3 rows of a cache segment to f32 under a head's scale: {@code DType.e4m3ToFloat(code) ×
 * scale}, the values the cache's tensors hold. Rows in a heap {@code byte[]} go through {@link
 * TileMath#widenE4m3} (vectors in the Vector API flavour); rows in native memory element by element.
 */
final class E4m3Rows {
    private E4m3Rows() {
    }

    /** The {@code n} codes at byte offset {@code at} of {@code seg} into {@code dst[dstAt ..]}. */
    static void widen(TileMath tiles, MemorySegment seg, long at, float scale, float[] dst, int dstAt, int n) {
        if (seg.heapBase().orElse(null) instanceof byte[] codes) {
            tiles.widenE4m3(codes, (int) (seg.address() + at), scale, dst, dstAt, n);
            return;
        }
        for (int c = 0; c < n; c++) {
            dst[dstAt + c] = DType.e4m3ToFloat(seg.get(ValueLayout.JAVA_BYTE, at + c)) * scale;
        }
    }
}
