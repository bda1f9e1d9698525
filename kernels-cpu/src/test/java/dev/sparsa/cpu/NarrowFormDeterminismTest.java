package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The narrow score form (dot products along the head dimension, softmax along the keys) gives the
 * same bits in every JIT tier: the interpreter ({@code -Xint}, in a child JVM) and C2 (here, after a
 * warm-up) agree bit for bit. Its sums across lanes are therefore lanewise additions in a fixed
 * order, never {@code reduceLanes(ADD)}, whose order the compiled and interpreted forms do not share;
 * otherwise a row's bits would depend on whether the thread that ran it had reached compiled code.
 */
class NarrowFormDeterminismTest {
    private static final int ROWS = 3;
    private static final int KEYS = 37;

    /** Scores and one softmax step of a few rows against gathered keys, for head dims with and without a tail. */
    static String bits(TileMath math) {
        StringBuilder b = new StringBuilder();
        for (int dim : new int[] {8, 24, 64, 72, 128}) {
            SplittableRandom rnd = new SplittableRandom(dim);
            float[] q = new float[ROWS * dim];
            float[] k = new float[KEYS * dim + 5];
            int[] kOff = new int[KEYS];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextDouble(-3, 3);
            }
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) rnd.nextDouble(-3, 3);
            }
            for (int j = 0; j < KEYS; j++) {
                kOff[j] = (KEYS - 1 - j) * dim; // gathered: any order
            }
            int ldR = KEYS + 16;
            float[] s = new float[ROWS * ldR];
            math.scoresByRow(q, ROWS, k, kOff, dim, KEYS, s, ldR);
            float[] m = {Float.NEGATIVE_INFINITY, 2.5f, 40f};
            float[] l = {0f, 1.5f, 3f};
            float[] alpha = new float[ROWS];
            math.softmaxByRow(s, ldR, KEYS, ROWS, m, l, alpha);
            for (float[] a : new float[][] {s, m, l, alpha}) {
                for (float x : a) {
                    b.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
                }
            }
        }
        return b.toString();
    }

    /** In a child JVM: the narrow form's bits of each flavour, one line each. */
    public static void main(String[] args) {
        JitTierBits.print(NarrowFormDeterminismTest::bits, args);
    }

    @Test
    void interpretedAndCompiledCodeGiveTheSameBits() throws IOException, InterruptedException {
        JitTierBits.Tiers t = JitTierBits.compiledAndInterpreted(NarrowFormDeterminismTest::bits,
                NarrowFormDeterminismTest.class);
        assertEquals("", firstDifference(t.compiledScalar(), t.interpretedScalar()), "scalar flavour: -Xint vs C2");
        assertEquals("", firstDifference(t.compiledVector(), t.interpretedVector()), "vector flavour: -Xint vs C2");
    }

    /** Empty when equal, else the first value that differs (compiled, then interpreted). */
    private static String firstDifference(String compiled, String interpreted) {
        String[] a = compiled.split(" ");
        String[] b = interpreted.split(" ");
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            if (!a[i].equals(b[i])) {
                return "value " + i + ": " + a[i] + " compiled, " + b[i] + " interpreted";
            }
        }
        return a.length == b.length ? "" : a.length + " values compiled, " + b.length + " interpreted";
    }
}
