package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The soft-cap gives the same bits in every kernel flavour and every JIT tier: the interpreter
 * ({@code -Xint}, in a child JVM) and C2 (here, after a warm-up) agree bit for bit, and both stay
 * within a few ulp of {@code tanh}.
 */
class SoftCapDeterminismTest {
    private static final float CAP = 30f;

    /** Scores with the edge values: zeros, tiny, near the exponential's cut-off, huge, infinite, NaN. */
    static float[] scores() {
        SplittableRandom rnd = new SplittableRandom(2024);
        List<Float> v = new ArrayList<>(List.of(0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-30f, -1e-7f, 1e-3f,
                CAP, -CAP, 43.6f * CAP, -43.7f * CAP, 1e30f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN));
        for (int i = 0; i < 4000; i++) {
            double mag = Math.pow(10, rnd.nextDouble(-8, 4));
            v.add((float) (rnd.nextBoolean() ? mag : -mag));
        }
        float[] out = new float[v.size() + (16 - v.size() % 16)]; // a whole number of vectors of any width
        for (int i = 0; i < v.size(); i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    static String bits(TileMath math) {
        float[] s = scores();
        math.softCap(s, s.length, 1, s.length, CAP);
        StringBuilder b = new StringBuilder(s.length * 9);
        for (float x : s) {
            b.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
        }
        return b.toString();
    }

    /** In a child JVM: the soft-capped bits of each flavour, one line each. */
    public static void main(String[] args) {
        JitTierBits.print(SoftCapDeterminismTest::bits, args);
    }

    @Test
    void flavoursAgreeAndStayCloseToTanh() {
        String scalar = bits(TileMathProvider.scalar());
        if (TileMathProvider.best().flavour() == KernelFlavour.VECTOR) {
            assertEquals(scalar, bits(TileMathProvider.vector()), "vector and scalar soft-cap bits");
        }
        float[] s = scores();
        float[] capped = s.clone();
        TileMathProvider.scalar().softCap(capped, capped.length, 1, capped.length, CAP);
        for (int i = 0; i < s.length; i++) {
            double want = CAP * Math.tanh((double) s[i] / CAP);
            if (Double.isNaN(want)) {
                assertTrue(Float.isNaN(capped[i]));
                continue;
            }
            assertTrue(Math.abs(capped[i] - want) <= 4 * Math.ulp((float) want) + 1e-45,
                    "soft-cap of " + s[i] + ": " + capped[i] + " vs " + want);
        }
    }

    @Test
    void interpretedAndCompiledCodeGiveTheSameBits() throws IOException, InterruptedException {
        JitTierBits.Tiers t = JitTierBits.compiledAndInterpreted(SoftCapDeterminismTest::bits, SoftCapDeterminismTest.class);
        assertEquals(t.compiledScalar(), t.interpretedScalar(), "scalar flavour: -Xint vs C2");
        assertEquals(t.compiledVector(), t.interpretedVector(), "vector flavour: -Xint vs C2");
    }
}
