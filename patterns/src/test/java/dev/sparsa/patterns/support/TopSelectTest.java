package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Top-k equals a full sort by (score descending, index ascending) over admitted, non-NaN scores. */
class TopSelectTest {
    @Test
    void equalsFullSortWithTiesNaNsSignedZerosAndFilters() {
        SplittableRandom rnd = new SplittableRandom(17);
        float[] specials = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 1f, -1f, Float.MIN_VALUE};
        for (int rep = 0; rep < 400; rep++) {
            int n = rnd.nextInt(0, 300);
            float[] s = new float[n];
            int mode = rep % 3;
            for (int i = 0; i < n; i++) {
                s[i] = switch (mode) {
                    case 0 -> (float) rnd.nextGaussian();
                    case 1 -> rnd.nextInt(0, 5); // many exact ties
                    default -> rnd.nextInt(4) == 0 ? specials[rnd.nextInt(specials.length)] : (float) rnd.nextGaussian();
                };
            }
            int k = rnd.nextInt(0, n + 3);
            int mod = rnd.nextInt(1, 4);
            TopSelect.Admit admit = rep % 2 == 0 ? null : i -> i % mod != 0;
            assertArrayEquals(bruteForce(s, n, k, admit), TopSelect.top(s, n, k, admit), "rep " + rep);
        }
    }

    /** Above 4096 candidates a score histogram prefilters; it must not change the selection. */
    @Test
    void largeInputsThroughThePrefilterEqualFullSort() {
        SplittableRandom rnd = new SplittableRandom(29);
        for (int rep = 0; rep < 16; rep++) {
            int n = rnd.nextInt(4097, 20000);
            float[] s = new float[n];
            for (int i = 0; i < n; i++) {
                s[i] = switch (rep % 4) {
                    case 0 -> (float) rnd.nextGaussian();
                    case 1 -> rnd.nextInt(0, 50); // heavy ties at the boundary
                    case 2 -> (float) Math.exp(rnd.nextGaussian() * 8); // wide dynamic range
                    default -> rnd.nextInt(10) == 0 ? -0f : rnd.nextInt(10) == 0 ? 0f : rnd.nextInt(20) == 0 ? Float.NaN
                            : (float) rnd.nextGaussian();
                };
            }
            int k = rep % 5 == 4 ? n : rnd.nextInt(1, n / 2);
            int mod = rnd.nextInt(1, 4);
            TopSelect.Admit admit = rep % 2 == 0 ? null : i -> i % mod != 0;
            assertArrayEquals(bruteForce(s, n, k, admit), TopSelect.top(s, n, k, admit), "rep " + rep);
        }
    }

    /**
     * Unfiltered inputs above 1024 go through the bracketed selection: the selection must not change
     * with clustered scores, exact ties across the cut and at the maximum, NaN runs, infinities (the
     * fallback), a single value, or k at and past the candidates.
     */
    @Test
    void largeUnfilteredInputsThroughTheBracketEqualFullSort() {
        SplittableRandom rnd = new SplittableRandom(31);
        for (int rep = 0; rep < 96; rep++) {
            int n = rnd.nextInt(1025, 12000);
            float[] s = new float[n];
            int mode = rep % 8;
            for (int i = 0; i < n; i++) {
                s[i] = switch (mode) {
                    case 0 -> (float) rnd.nextGaussian();
                    case 1 -> rnd.nextInt(0, 3000) / 7f; // ties spread over many bins
                    case 2 -> rnd.nextInt(50) == 0 ? 100f + (float) rnd.nextGaussian() : (float) rnd.nextGaussian() * 1e-3f;
                    case 3 -> i < n / 5 ? Float.NaN : (float) rnd.nextGaussian(); // a NaN run (masked keys)
                    case 4 -> rnd.nextInt(100) == 0 ? Float.POSITIVE_INFINITY : (float) rnd.nextGaussian();
                    case 5 -> rnd.nextInt(3) == 0 ? 7f : (float) rnd.nextGaussian(); // many ties at the maximum
                    case 6 -> rnd.nextInt(4) == 0 ? Math.nextUp(1f) : 1f; // two adjacent floats
                    default -> 2.5f; // one value: no range
                };
            }
            int k = switch (rep % 4) {
                case 0 -> rnd.nextInt(1, n / 2);
                case 1 -> n;
                case 2 -> rnd.nextInt(n / 2, n);
                default -> 1;
            };
            assertArrayEquals(bruteForce(s, n, k, null), TopSelect.top(s, n, k, null), "rep " + rep + " mode " + mode);
        }
    }

    private static int[] bruteForce(float[] s, int n, int k, TopSelect.Admit admit) {
        List<Integer> c = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (!Float.isNaN(s[i]) && (admit == null || admit.test(i))) {
                c.add(i);
            }
        }
        // Float.compare would order -0 below +0; the ranking treats them as equal
        c.sort(Comparator.<Integer>comparingDouble(i -> -(s[i] == 0f ? 0.0 : s[i])).thenComparingInt(i -> i));
        return c.subList(0, Math.max(0, Math.min(k, c.size()))).stream().mapToInt(Integer::intValue).sorted().toArray();
    }
}
