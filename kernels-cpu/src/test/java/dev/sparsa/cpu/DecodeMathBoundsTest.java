package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Quest's page bounds from the decode arithmetic: {@code Σ_c max(q_c·min_c, q_c·max_c)} per query
 * vector and page, within f32 rounding of the f64 sum, and bitwise the same whether a query vector is
 * computed alone or with three others (the kernels for four vectors share each bound row's loads but
 * not their sums); for f32 and bf16 bounds, in Java arrays and in native memory, at head dims that
 * are and are not a multiple of the lanes, with zeros, infinities and NaN among the bounds.
 */
class DecodeMathBoundsTest {

    @Test
    void fourVectorsAtOnceHaveTheBitsOfOneAtATimeAndTheDefinitionsValue() {
        SplittableRandom rnd = new SplittableRandom(3);
        TileMath tiles = TileMathProvider.best();
        for (DecodeMath math : List.of(DecodeMathProvider.forFlavour(tiles.flavour()),
                DecodeMathProvider.forFlavour(KernelFlavour.SCALAR))) {
            for (DType type : List.of(DType.F32, DType.BF16)) {
                for (int dim : new int[] {128, 40, 7}) {
                    for (boolean nativeMemory : new boolean[] {false, true}) {
                        check(math, type, dim, nativeMemory, rnd);
                    }
                }
            }
        }
    }

    private static void check(DecodeMath math, DType type, int dim, boolean nativeMemory, SplittableRandom rnd) {
        int pages = 37;
        int nq = 9;
        int ldQ = (dim + 15) / 16 * 16;
        int ldS = (pages + 15) / 16 * 16;
        float[] q = new float[(nq + 3) / 4 * 4 * ldQ];
        for (int x = 0; x < nq; x++) {
            for (int c = 0; c < dim; c++) {
                q[x * ldQ + c] = rnd.nextInt(10) == 0 ? 0f : (float) rnd.nextGaussian();
            }
        }
        // rows: page i's min at row 2i, max at row 2i + 1, rounded to the type
        float[][] rows = new float[2 * pages][dim];
        for (int i = 0; i < pages; i++) {
            for (int c = 0; c < dim; c++) {
                float a = round(type, (float) rnd.nextGaussian());
                float b = round(type, (float) rnd.nextGaussian());
                rows[2 * i][c] = Math.min(a, b);
                rows[2 * i + 1][c] = Math.max(a, b);
            }
        }
        rows[3][1 % dim] = Float.POSITIVE_INFINITY;
        rows[4][2 % dim] = Float.NEGATIVE_INFINITY;
        rows[6][0] = Float.NaN;
        rows[7][0] = Float.NaN;
        long e = type.byteSize();
        long rowBytes = dim * e;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = nativeMemory ? arena.allocate(2 * pages * rowBytes, 64)
                    : type == DType.F32 ? MemorySegment.ofArray(new float[2 * pages * dim])
                    : MemorySegment.ofArray(new short[2 * pages * dim]);
            long[] minOff = new long[pages];
            long[] maxOff = new long[pages];
            for (int r = 0; r < 2 * pages; r++) {
                for (int c = 0; c < dim; c++) {
                    long at = r * rowBytes + c * e;
                    if (type == DType.F32) {
                        seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, rows[r][c]);
                    } else {
                        seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) (Float.floatToRawIntBits(rows[r][c]) >>> 16));
                    }
                }
            }
            // pages in a shuffled order of their rows
            for (int i = 0; i < pages; i++) {
                int p = (i * 11) % pages;
                minOff[i] = 2 * p * rowBytes;
                maxOff[i] = (2 * p + 1) * rowBytes;
            }
            float[] all = new float[nq * ldS];
            math.questBounds(q, ldQ, nq, dim, seg, minOff, maxOff, type, pages, all, ldS);
            for (int x = 0; x < nq; x++) {
                float[] one = new float[ldS];
                float[] qx = new float[4 * ldQ];
                System.arraycopy(q, x * ldQ, qx, 0, ldQ);
                math.questBounds(qx, ldQ, 1, dim, seg, minOff, maxOff, type, pages, one, ldS);
                for (int i = 0; i < pages; i++) {
                    int p = (i * 11) % pages;
                    String what = math.flavour() + " " + type + " dim " + dim + (nativeMemory ? " native" : " heap")
                            + " vector " + x + " page " + p;
                    assertEquals(Float.floatToIntBits(one[i]), Float.floatToIntBits(all[x * ldS + i]), what);
                    double exact = 0;
                    double magnitude = 0;
                    for (int c = 0; c < dim; c++) {
                        double t = Math.max((double) q[x * ldQ + c] * rows[2 * p][c], (double) q[x * ldQ + c] * rows[2 * p + 1][c]);
                        exact += t;
                        magnitude += Math.abs(t);
                    }
                    if (Double.isNaN(exact)) {
                        assertEquals(Float.NaN, all[x * ldS + i], what);
                    } else if (Double.isInfinite(exact)) {
                        assertEquals((float) exact, all[x * ldS + i], what);
                    } else {
                        assertEquals(exact, all[x * ldS + i], 1e-5 * magnitude + 1e-30, what);
                    }
                }
            }
        }
    }

    private static float round(DType type, float v) {
        return type == DType.BF16 ? DType.bf16ToFloat(DType.floatToBf16(v)) : v;
    }
}
