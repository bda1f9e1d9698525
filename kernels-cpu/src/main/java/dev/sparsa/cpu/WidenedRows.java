package dev.sparsa.cpu;

import dev.sparsa.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Widens f16 and e4m3 rows of a cache segment to f32, exactly the values the cache's tensors hold: f16
 * by {@link Float#float16ToFloat}, e4m3 as {@code DType.e4m3ToFloat(code) × scale} under a head's
 * scale. The decode arithmetic ({@link DecodeMath}) reads f32 and bf16 rows only, so rows of these two
 * types are widened into f32 scratch first. Rows in a heap array go through {@link TileMath#widenF16}
 * and {@link TileMath#widenE4m3} (array loops the JIT compiles to vector code where it can); rows in
 * native memory element by element.
 */
final class WidenedRows {
    private WidenedRows() {
    }

    /**
     * The {@code n} elements of {@code type} (f16, or e4m3 under {@code scale}) at byte offset {@code at}
     * of {@code seg} into {@code dst[dstAt ..]}.
     *
     * @throws IllegalArgumentException for any other type
     */
    static void widen(TileMath tiles, MemorySegment seg, DType type, long at, float scale, float[] dst, int dstAt,
                      int n) {
        switch (type) {
            case F16 -> f16(tiles, seg, at, dst, dstAt, n);
            case E4M3 -> e4m3(tiles, seg, at, scale, dst, dstAt, n);
            default -> throw new IllegalArgumentException("widened rows are f16 or e4m3, not " + type);
        }
    }

    /**
     * {@code heads} runs of {@code headElements} elements of {@code type} back to back at byte offset {@code at}
     * of {@code seg} (every head's rows of a page, say) into {@code dst[dstAt ..]}: f16 as one run, e4m3 run
     * {@code h} under {@code scales[h]}. The same values as {@link #widen} run by run, with the segment's
     * backing array looked up once.
     *
     * @throws IllegalArgumentException for a type other than f16 and e4m3
     */
    static void widenHeads(TileMath tiles, MemorySegment seg, DType type, long at, float[] scales, int heads,
                           int headElements, float[] dst, int dstAt) {
        if (type == DType.F16) {
            f16(tiles, seg, at, dst, dstAt, heads * headElements);
            return;
        }
        if (type != DType.E4M3) {
            throw new IllegalArgumentException("widened rows are f16 or e4m3, not " + type);
        }
        if (seg.heapBase().orElse(null) instanceof byte[] codes) {
            int from = (int) (seg.address() + at);
            for (int h = 0; h < heads; h++) {
                tiles.widenE4m3(codes, from + h * headElements, scales[h], dst, dstAt + h * headElements, headElements);
            }
            return;
        }
        for (int h = 0; h < heads; h++) {
            e4m3(tiles, seg, at + (long) h * headElements, scales[h], dst, dstAt + h * headElements, headElements);
        }
    }

    /**
     * The {@code n} rows of {@code rowElements} elements of {@code type} (f16, or e4m3 under {@code
     * scale}) at byte offsets {@code off[0 .. n)} of {@code seg} into {@code dst}, row j at {@code dstAt + j
     * · rowElements}. Rows that follow one another in {@code seg} are widened by one call: a widening loop
     * over one row of 128 values spends about as long again outside its vector body.
     *
     * @throws IllegalArgumentException for a type other than f16 and e4m3
     */
    static void widenRows(TileMath tiles, MemorySegment seg, DType type, long[] off, int n, float scale, float[] dst,
                          int dstAt, int rowElements) {
        long rowBytes = (long) rowElements * type.byteSize();
        for (int j = 0; j < n; ) {
            int e = following(off, j, n, rowBytes);
            widen(tiles, seg, type, off[j], scale, dst, dstAt + j * rowElements, (e - j) * rowElements);
            j = e;
        }
    }

    /**
     * The end of the rows from {@code j} that follow one another: the largest {@code e ≤ n} (at least {@code j
     * + 1}) with {@code off[i] == off[i - 1] + rowBytes} for every {@code j < i < e}.
     */
    static int following(long[] off, int j, int n, long rowBytes) {
        int e = j + 1;
        while (e < n && off[e] == off[e - 1] + rowBytes) {
            e++;
        }
        return e;
    }

    /** The {@code n} f16 values at byte offset {@code at} of {@code seg} into {@code dst[dstAt ..]}. */
    static void f16(TileMath tiles, MemorySegment seg, long at, float[] dst, int dstAt, int n) {
        if (seg.heapBase().orElse(null) instanceof short[] bits) {
            tiles.widenF16(bits, (int) ((seg.address() + at) / 2), dst, dstAt, n);
            return;
        }
        for (int c = 0; c < n; c++) {
            dst[dstAt + c] = Float.float16ToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, at + 2L * c));
        }
    }

    /** The {@code n} codes at byte offset {@code at} of {@code seg} into {@code dst[dstAt ..]}. */
    static void e4m3(TileMath tiles, MemorySegment seg, long at, float scale, float[] dst, int dstAt, int n) {
        if (seg.heapBase().orElse(null) instanceof byte[] codes) {
            tiles.widenE4m3(codes, (int) (seg.address() + at), scale, dst, dstAt, n);
            return;
        }
        for (int c = 0; c < n; c++) {
            dst[dstAt + c] = DType.e4m3ToFloat(seg.get(ValueLayout.JAVA_BYTE, at + c)) * scale;
        }
    }
}
