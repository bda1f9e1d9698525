package dev.sparsa.patterns.support;

/**
 * Deterministic top-k over float scores: larger scores first, ties to the lower index; candidates
 * are the indices in {@code [0, n)} a filter admits. Expected O(n) (quickselect on packed keys), no boxing.
 */
public final class TopSelect {
    private TopSelect() {
    }

    /** Index filter. */
    @FunctionalInterface
    public interface Admit {
        boolean test(int index);
    }

    /**
     * The (at most) {@code k} best admitted indices of {@code scores[0..n)}, ascending by index.
     * NaN scores are never selected.
     *
     * <p>Each candidate is packed into one {@code long} whose natural order is the ranking (score
     * bits made sortable, {@code -0} read as {@code +0} since they compare equal, then the index
     * reversed so the lower index ranks higher); keys are distinct, so the top {@code k} is a unique
     * set, found by a deterministic quickselect in expected O(n) and returned through a bit set.
     */
    public static int[] top(float[] scores, int n, int k, Admit admit) {
        if (k <= 0 || n <= 0) {
            return new int[0];
        }
        long[] packed = scratch(n);
        int m = 0;
        for (int i = 0; i < n; i++) {
            float v = scores[i];
            if (v != v || (admit != null && !admit.test(i))) {
                continue;
            }
            packed[m++] = pack(v, i);
        }
        int take = Math.min(k, m);
        if (take < m) {
            selectLargest(packed, m, take);
        }
        long[] bits = new long[(n + 63) >>> 6];
        for (int j = 0; j < take; j++) {
            int i = Integer.MAX_VALUE - (int) packed[j];
            bits[i >>> 6] |= 1L << i;
        }
        int[] out = new int[take];
        int at = 0;
        for (int w = 0; w < bits.length; w++) {
            long word = bits[w];
            while (word != 0) {
                out[at++] = (w << 6) + Long.numberOfTrailingZeros(word);
                word &= word - 1;
            }
        }
        return out;
    }

    /** Sortable (score, index) key: larger means ranked first. */
    private static long pack(float v, int i) {
        int b = Float.floatToRawIntBits(v == 0f ? 0f : v);
        b ^= (b >> 31) & 0x7FFFFFFF;
        return ((long) b << 32) | (Integer.MAX_VALUE - i);
    }

    private static final ThreadLocal<long[]> SCRATCH = ThreadLocal.withInitial(() -> new long[1024]);

    private static long[] scratch(int n) {
        long[] a = SCRATCH.get();
        if (a.length < n) {
            a = new long[Math.max(n, 2 * a.length)];
            SCRATCH.set(a);
        }
        return a;
    }

    /** Moves the {@code take} largest of {@code a[0..m)} (distinct) into {@code a[0..take)}, in any order. */
    private static void selectLargest(long[] a, int m, int take) {
        int lo = 0;
        int hi = m - 1;
        while (lo < hi) {
            // median of three as pivot (deterministic), Hoare partition into >= pivot | <= pivot
            int mid = (lo + hi) >>> 1;
            long x = a[lo];
            long y = a[mid];
            long z = a[hi];
            long pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] > pivot) {
                    i++;
                }
                while (a[j] < pivot) {
                    j--;
                }
                if (i <= j) {
                    long t = a[i];
                    a[i] = a[j];
                    a[j] = t;
                    i++;
                    j--;
                }
            }
            // now a[lo..j] >= pivot >= a[i..hi], and j < i
            if (take - 1 <= j) {
                hi = j;
            } else if (take - 1 >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    /** True when index a ranks before index b: higher score, or equal score and lower index. */
    public static boolean better(int a, int b, float[] s) {
        return s[a] > s[b] || (s[a] == s[b] && a < b);
    }
}
