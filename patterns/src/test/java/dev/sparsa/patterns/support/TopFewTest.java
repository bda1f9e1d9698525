package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
}
