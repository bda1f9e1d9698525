package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** CanonicalExp against StrictMath.exp rounded to float. */
class CanonicalExpTest {
    private static long ulps(float a, float b) {
        return Math.abs((long) Float.floatToIntBits(a) - Float.floatToIntBits(b));
    }

    @Test
    void withinOneUlpOfStrictMathOverTheWholeRange() {
        SplittableRandom rnd = new SplittableRandom(7);
        long worst = 0;
        int exact = 0;
        int n = 2_000_000;
        for (int i = 0; i < n; i++) {
            // half uniform over [-110, 92], half near 0 where probabilities live
            float x = i % 2 == 0 ? (float) (rnd.nextDouble() * 202 - 110) : (float) (-rnd.nextDouble() * 20);
            float want = (float) StrictMath.exp(x);
            float got = CanonicalExp.exp(x);
            long u = ulps(got, want);
            worst = Math.max(worst, u);
            exact += u == 0 ? 1 : 0;
            assertTrue(u <= 1, "exp(" + x + ") = " + got + ", StrictMath " + want);
        }
        // the polynomial is far more precise than a float: nearly every value is the rounded one
        assertTrue(exact > 0.999 * n, exact + " of " + n + " exact, worst " + worst + " ulp");
    }

    @Test
    void everyFloatInTheSoftmaxRangeNearZero() {
        // all floats in [-1, 0]: the reduction's n = 0 and n = -1 cases and the boundary between them
        for (long bits = 0xBF800000L; bits >= 0x80000000L; bits -= 97) {
            float x = Float.intBitsToFloat((int) bits);
            assertTrue(ulps(CanonicalExp.exp(x), (float) StrictMath.exp(x)) <= 1, "exp(" + x + ")");
        }
    }

    @Test
    void specialValues() {
        assertEquals(1f, CanonicalExp.exp(0f));
        assertEquals(1f, CanonicalExp.exp(-0f));
        assertTrue(Float.isNaN(CanonicalExp.exp(Float.NaN)));
        assertEquals(0f, CanonicalExp.exp(Float.NEGATIVE_INFINITY));
        assertEquals(0f, CanonicalExp.exp(-200f));
        assertEquals(Float.POSITIVE_INFINITY, CanonicalExp.exp(Float.POSITIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, CanonicalExp.exp(100f));
        assertTrue(CanonicalExp.exp(-100f) > 0f, "subnormal results are kept");
        assertEquals((float) Math.E, CanonicalExp.exp(1f));
    }
}
