package dev.sparsa.patterns.support;

/**
 * Deterministic top-k over float scores: larger scores first, ties to the lower index; candidates
 * are the indices in {@code [0, n)} a filter admits. Expected O(n) (a threshold from a sample narrows
 * large inputs to the candidates that can rank, then a quickselect on packed keys), no boxing.
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
        int m = n > PREFILTER_FROM ? prefiltered(scores, n, k, admit, packed) : -1;
        int take;
        if (m >= 0) {
            take = k; // the prefilter kept every key that can rank in the top k, and more than k of them
        } else {
            m = 0;
            for (int i = 0; i < n; i++) {
                float v = scores[i];
                if (v != v || (admit != null && !admit.test(i))) {
                    continue;
                }
                packed[m++] = pack(v, i);
            }
            take = Math.min(k, m);
        }
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

    /** Candidate counts above which {@link #prefiltered} runs before the quickselect. */
    private static final int PREFILTER_FROM = 4096;
    private static final int SAMPLE = 512;

    /**
     * Packs only candidates that can rank in the top {@code k}: a threshold {@code τ} is read off a
     * strided sample of the scores (a little below the sample's estimate of the k-th best), and every
     * candidate with score {@code ≥ τ} is packed. When at least {@code k} are, the k-th best score is
     * {@code ≥ τ}, so every member of the top k was packed (ties at {@code τ} included): the
     * selection is exact. Returns how many were packed, or -1 when fewer than {@code k} passed (the
     * caller then packs every candidate).
     */
    private static int prefiltered(float[] scores, int n, int k, Admit admit, long[] packed) {
        if (k > n / 2) {
            return -1; // a large share: the threshold would save little
        }
        float[] sample = new float[SAMPLE];
        int ns = 0;
        int step = n / SAMPLE;
        for (int i = 0; i < n && ns < SAMPLE; i += step) {
            float v = scores[i];
            if (v == v && (admit == null || admit.test(i))) {
                sample[ns++] = v;
            }
        }
        if (ns < SAMPLE / 4) {
            return -1;
        }
        java.util.Arrays.sort(sample, 0, ns);
        // rank from the top: the expected rank of the k-th best, with room for sampling error
        int rank = (int) Math.min(ns - 1, Math.ceil((double) k / n * ns * 1.5) + 8);
        float tau = sample[ns - 1 - rank];
        int kept = 0;
        for (int i = 0; i < n; i++) {
            float v = scores[i];
            // v >= tau is false for NaN
            if (v >= tau && (admit == null || admit.test(i))) {
                packed[kept++] = pack(v, i);
            }
        }
        return kept >= k ? kept : -1;
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
