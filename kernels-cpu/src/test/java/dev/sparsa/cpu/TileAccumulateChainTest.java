package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link TileMath#accumulate} of the vector flavour against its definition to the bit: every output
 * is {@code alpha·o} (or 0 when fresh) followed by one fused multiply-add chain over the keys in
 * order, {@code a = fma(v[j][c], p[j][r], a)}, whichever micro-kernel computed it, with the value
 * rows a fixed stride apart (a compact block, the strided kernel) or at scattered offsets.
 */
class TileAccumulateChainTest {

    @Test
    void everyOutputIsOneFmaChainOverTheKeysInOrder() {
        TileMath math = TileMathProvider.best();
        if (math.flavour() != KernelFlavour.VECTOR) {
            throw new org.opentest4j.TestAbortedException("the Vector API is not readable in this JVM");
        }
        int lanes = math.lanes();
        SplittableRandom rnd = new SplittableRandom(5);
        for (int rows : new int[] {1, 4, 6, 7, 13, 64}) {
            for (int n : new int[] {1, 2, 5, 64}) {
                for (int cols : new int[] {lanes, 2 * lanes, 3 * lanes, 8 * lanes}) {
                    for (boolean scattered : new boolean[] {false, true}) {
                        for (boolean fresh : new boolean[] {false, true}) {
                            check(math, rnd, rows, n, cols, scattered, fresh);
                        }
                    }
                }
            }
        }
    }

    private static void check(TileMath math, SplittableRandom rnd, int rows, int n, int cols, boolean scattered,
                              boolean fresh) {
        int ldS = ((rows + math.lanes() - 1) / math.lanes()) * math.lanes();
        float[] p = new float[n * ldS];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) rnd.nextDouble(0, 1);
        }
        // value rows: a compact block (offsets j·cols) or the same rows at scattered offsets
        int[] vOff = new int[n];
        float[] v = new float[n * (cols + 7) + 16];
        for (int j = 0; j < n; j++) {
            vOff[j] = scattered ? (n - 1 - j) * (cols + 7) + 3 : j * cols;
            for (int c = 0; c < cols; c++) {
                v[vOff[j] + c] = (float) rnd.nextDouble(-1, 1);
            }
        }
        float[] o = new float[rows * cols];
        for (int i = 0; i < o.length; i++) {
            o[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] alpha = new float[rows];
        for (int r = 0; r < rows; r++) {
            alpha[r] = (float) rnd.nextDouble(0, 1);
        }
        float[] want = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                float a = fresh ? 0f : o[r * cols + c] * alpha[r];
                for (int j = 0; j < n; j++) {
                    a = Math.fma(v[vOff[j] + c], p[j * ldS + r], a);
                }
                want[r * cols + c] = a;
            }
        }
        math.accumulate(p, ldS, n, rows, v, vOff, cols, o, cols, alpha, fresh, null, null, null);
        for (int i = 0; i < want.length; i++) {
            int at = i;
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(o[i]),
                    () -> math.description() + ": rows " + rows + ", n " + n + ", cols " + cols + ", scattered "
                            + scattered + ", fresh " + fresh + ", output " + at);
        }
    }
}
