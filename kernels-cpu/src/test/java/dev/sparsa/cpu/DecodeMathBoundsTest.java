package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        // pages in a shuffled order of their rows
        int[] order = new int[pages];
        for (int i = 0; i < pages; i++) {
            order[i] = (i * 11) % pages;
        }
        float[] all = bounds(math, type, dim, nativeMemory, rows, order, q, ldQ, nq, ldS,
                DecodeMath.boundsBySign(q, ldQ, nq, dim));
        for (int x = 0; x < nq; x++) {
            float[] qx = new float[4 * ldQ];
            System.arraycopy(q, x * ldQ, qx, 0, ldQ);
            float[] one = bounds(math, type, dim, nativeMemory, rows, order, qx, ldQ, 1, ldS,
                    DecodeMath.boundsBySign(qx, ldQ, 1, dim));
            for (int i = 0; i < pages; i++) {
                int p = order[i];
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

    /**
     * Query vectors whose channels are all finite and not 0 may take each channel's bound by the
     * query's sign; the same call through {@code Math.max} of the two products must give the same bits
     * on every bound pair an append can write: {@code min ≤ max} with zeros of both signs, infinities,
     * subnormals, NaN in both, and products that overflow.
     */
    @Test
    void boundsTakenByTheQuerysSignHaveTheBitsOfTheMaxOfBothProducts() {
        SplittableRandom rnd = new SplittableRandom(11);
        DecodeMath math = DecodeMathProvider.forFlavour(TileMathProvider.best().flavour());
        float[] special = {0f, -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 3e38f, -3e38f, 1e-40f, -1e-40f};
        for (DType type : List.of(DType.F32, DType.BF16)) {
            for (int dim : new int[] {128, 40, 7}) {
                for (boolean nativeMemory : new boolean[] {false, true}) {
                    int pages = 53;
                    int nq = 7;
                    int ldQ = (dim + 15) / 16 * 16;
                    int ldS = (pages + 15) / 16 * 16;
                    float[] q = new float[(nq + 3) / 4 * 4 * ldQ];
                    for (int x = 0; x < nq; x++) {
                        for (int c = 0; c < dim; c++) {
                            float v = (float) rnd.nextGaussian();
                            v = v == 0f ? 1f : v;
                            if (rnd.nextInt(16) == 0) {
                                v = rnd.nextBoolean() ? 1e30f : -1e-30f;
                            }
                            q[x * ldQ + c] = round(type, v);
                        }
                    }
                    assertTrue(DecodeMath.boundsBySign(q, ldQ, nq, dim));
                    float[][] rows = new float[2 * pages][dim];
                    for (int i = 0; i < pages; i++) {
                        for (int c = 0; c < dim; c++) {
                            float a = rnd.nextInt(6) == 0 ? special[rnd.nextInt(special.length)] : (float) rnd.nextGaussian();
                            float b = rnd.nextInt(6) == 0 ? special[rnd.nextInt(special.length)] : (float) rnd.nextGaussian();
                            a = round(type, a);
                            b = round(type, b);
                            boolean nan = rnd.nextInt(40) == 0;
                            rows[2 * i][c] = nan ? Float.NaN : Math.min(a, b);
                            rows[2 * i + 1][c] = nan ? Float.NaN : Math.max(a, b);
                        }
                    }
                    int[] order = java.util.stream.IntStream.range(0, pages).toArray();
                    float[] bySign = bounds(math, type, dim, nativeMemory, rows, order, q, ldQ, nq, ldS, true);
                    float[] byMax = bounds(math, type, dim, nativeMemory, rows, order, q, ldQ, nq, ldS, false);
                    for (int x = 0; x < nq; x++) {
                        for (int i = 0; i < pages; i++) {
                            // bits, zeros' signs included; every NaN alike (which NaN x86 makes differs by form)
                            assertEquals(Float.floatToIntBits(byMax[x * ldS + i]), Float.floatToIntBits(bySign[x * ldS + i]),
                                    type + " dim " + dim + (nativeMemory ? " native" : " heap") + " vector " + x + " page " + i);
                        }
                    }
                }
            }
        }
    }

    /** The check refuses a query vector with a 0, an infinity or NaN in any channel below {@code dim}. */
    @Test
    void theSignFormIsOfferedOnlyForFiniteNonZeroQueries() {
        float[] q = new float[2 * 16];
        java.util.Arrays.fill(q, 0.5f);
        q[7] = -1e-40f;
        assertTrue(DecodeMath.boundsBySign(q, 16, 2, 9));
        for (float bad : new float[] {0f, -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN}) {
            float[] b = q.clone();
            b[16 + 8] = bad;
            assertFalse(DecodeMath.boundsBySign(b, 16, 2, 9), "channel " + bad);
            // past dim: padding, not looked at
            b = q.clone();
            b[16 + 9] = bad;
            assertTrue(DecodeMath.boundsBySign(b, 16, 2, 9), "padding " + bad);
        }
    }

    /**
     * {@code out[x·ldS + i]}: the bound of query vector {@code x} for page {@code order[i]}, whose min and max
     * rows are {@code rows[2p]}, {@code rows[2p + 1]}, stored in the type on the heap or in native memory.
     */
    private static float[] bounds(DecodeMath math, DType type, int dim, boolean nativeMemory, float[][] rows,
                                  int[] order, float[] q, int ldQ, int nq, int ldS, boolean bySign) {
        int pages = rows.length / 2;
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
            for (int i = 0; i < order.length; i++) {
                minOff[i] = 2L * order[i] * rowBytes;
                maxOff[i] = (2L * order[i] + 1) * rowBytes;
            }
            float[] out = new float[(nq + 3) / 4 * 4 * ldS];
            math.questBounds(q, ldQ, nq, dim, seg, minOff, maxOff, type, order.length, out, ldS, bySign);
            return out;
        }
    }

    private static float round(DType type, float v) {
        return type == DType.BF16 ? DType.bf16ToFloat(DType.floatToBf16(v)) : v;
    }
}
