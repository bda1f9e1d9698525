package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The one-pass few-best selection picks exactly what TopSelect picks: ties, signed zeros, NaN, infinities. */
class TopFewTest {
    @Test
    void agreesWithTopSelect() {
        SplittableRandom rnd = new SplittableRandom(3);
        float[] pool = {0f, -0f, 1f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 2.5f, 2.5f};
        TopFew few = new TopFew();
        for (int rep = 0; rep < 3000; rep++) {
            int n = rnd.nextInt(0, 80);
            int from = rnd.nextInt(0, 5);
            float[] s = new float[from + n];
            for (int i = 0; i < s.length; i++) {
                s[i] = rnd.nextInt(3) == 0 ? pool[rnd.nextInt(pool.length)] : (float) rnd.nextInt(-5, 6);
            }
            int k = rnd.nextInt(0, 20);
            assertArrayEquals(TopSelect.top(s, from, n, k, null), few.top(s, from, n, k), "rep " + rep);
        }
    }

    /** A guess of the k-th score (any value: too low, too high, NaN, the previous row's) never changes the result; rows long enough for the guessed path. */
    @Test
    void guessesChangeNothing() {
        SplittableRandom rnd = new SplittableRandom(4);
        float[] pool = {0f, -0f, 1f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 2.5f, 2.5f};
        TopFew few = new TopFew();
        for (int rep = 0; rep < 3000; rep++) {
            int n = rnd.nextInt(0, 300);
            int from = rnd.nextInt(0, 5);
            float[] s = new float[from + n];
            for (int i = 0; i < s.length; i++) {
                s[i] = rnd.nextInt(4) == 0 ? pool[rnd.nextInt(pool.length)] : (float) rnd.nextInt(-20, 21);
            }
            int k = rnd.nextInt(0, 40);
            float guess = switch (rnd.nextInt(4)) {
                case 0 -> few.nextGuess();
                case 1 -> pool[rnd.nextInt(pool.length)];
                default -> (float) rnd.nextInt(-20, 21);
            };
            assertArrayEquals(TopSelect.top(s, from, n, k, null), few.top(s, from, n, k, guess), "rep " + rep + " guess " + guess);
        }
    }

    /**
     * The form that writes into a caller's array writes what TopSelect picks at the given offset,
     * returns its count and leaves the rest of the array alone, whatever the guess.
     */
    @Test
    void writingIntoAnArrayAgreesWithTopSelect() {
        SplittableRandom rnd = new SplittableRandom(5);
        float[] pool = {0f, -0f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 2.5f};
        TopFew few = new TopFew();
        for (int rep = 0; rep < 3000; rep++) {
            int n = rnd.nextInt(0, 300);
            int from = rnd.nextInt(0, 5);
            float[] s = new float[from + n];
            for (int i = 0; i < s.length; i++) {
                s[i] = rnd.nextInt(4) == 0 ? pool[rnd.nextInt(pool.length)] : (float) rnd.nextInt(-20, 21);
            }
            int k = rnd.nextInt(0, 40);
            float guess = rnd.nextBoolean() ? few.nextGuess() : (float) rnd.nextInt(-20, 21);
            int[] expect = TopSelect.top(s, from, n, k, null);
            int at = rnd.nextInt(0, 4);
            int[] out = new int[at + Math.max(0, Math.min(k, n)) + 3];
            java.util.Arrays.fill(out, -9);
            int c = few.top(s, from, n, k, guess, out, at);
            assertEquals(expect.length, c, "rep " + rep);
            assertArrayEquals(expect, java.util.Arrays.copyOfRange(out, at, at + c), "rep " + rep + " guess " + guess);
            for (int i = 0; i < out.length; i++) {
                if (i < at || i >= at + c) {
                    assertEquals(-9, out[i], "rep " + rep + " index " + i + " outside the written range");
                }
            }
        }
    }
}
