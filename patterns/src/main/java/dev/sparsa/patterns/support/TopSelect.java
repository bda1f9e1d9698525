package dev.sparsa.patterns.support;

/**
 * Deterministic top-k over float scores: larger scores first, ties to the lower index; candidates
 * are the indices in {@code [0, n)} a filter admits. Expected O(n), no boxing: large unfiltered
 * inputs through a bracket of the k-th score narrowed by vector counting passes (only the scores
 * inside it are compared key by key); otherwise a threshold from a sample narrows large inputs to
 * the candidates that can rank, then a quickselect on packed keys.
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
        return top(scores, 0, n, k, admit);
    }

    /**
     * {@link #top(float[], int, int, Admit)} of the scores {@code scores[from, from + n)}: indices
     * (and the filter's) are relative to {@code from}. For a row of a larger buffer, without a copy.
     */
    public static int[] top(float[] scores, int from, int n, int k, Admit admit) {
        if (k <= 0 || n <= 0) {
            return new int[0];
        }
        if (from < 0 || (long) from + n > scores.length) {
            throw new IllegalArgumentException("scores: [" + from + ", " + ((long) from + n) + ") outside an array of "
                    + scores.length);
        }
        if (admit == null && n > BRACKETED_FROM) {
            int[] bracketed = bracketed(scores, from, n, k);
            if (bracketed != null) {
                return bracketed;
            }
        }
        long[] packed = scratch(n);
        int m = n > PREFILTER_FROM ? prefiltered(scores, from, n, k, admit, packed) : -1;
        int take;
        if (m >= 0) {
            take = k; // the prefilter kept every key that can rank in the top k, and more than k of them
        } else {
            m = 0;
            for (int i = 0; i < n; i++) {
                float v = scores[from + i];
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
        setPacked(bits, packed, take);
        return indices(bits, take);
    }

    /** Sets the bit of the index packed in each of {@code packed[0, m)}. */
    private static void setPacked(long[] bits, long[] packed, int m) {
        for (int j = 0; j < m; j++) {
            int i = Integer.MAX_VALUE - (int) packed[j];
            bits[i >>> 6] |= 1L << i;
        }
    }

    /** The {@code count} set bits' indices, ascending. */
    private static int[] indices(long[] bits, int count) {
        int[] out = new int[count];
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

    /** Candidate counts above which unfiltered selections go through {@link #bracketed}. */
    private static final int BRACKETED_FROM = 1024;
    /** The bracket is narrowed until at most this many scores lie inside it. */
    private static final int BRACKET_MAX = 256;

    /**
     * Selection by a bracket of the k-th score, in vector passes that compare and count (no branch
     * to mispredict): with {@code a ≤ b}, every score {@code > b} ranks above every score in {@code
     * [a, b]}, and those above every score {@code < a}; so when fewer than {@code k} scores exceed
     * {@code b} and at least {@code k} reach {@code a}, the top k is every score above {@code b}
     * plus the best of the bracket by (score, index). The bracket starts at the scores' range, is cut
     * at two guesses from a sample, then halved (one counting pass each) until it holds at most
     * {@value #BRACKET_MAX} scores or cannot be split. Returns {@code null} (the caller's quickselect
     * decides) when the range is not finite.
     */
    private static int[] bracketed(float[] s, int from, int n, int k) {
        Vectors.Range range = Vectors.range(s, from, n);
        float a = range.min();
        float b = range.max();
        if (Float.isInfinite(a) || Float.isInfinite(b)) {
            return null; // also all NaN
        }
        int atA = range.count(); // every candidate reaches the minimum
        if (atA <= k) {
            long[] bits = new long[(n + 63) >>> 6];
            Vectors.bitsAtLeast(s, from, n, a, bits);
            return indices(bits, atA);
        }
        // invariant: atA >= k > atB, unless k or more tie at the maximum. While b is the maximum its
        // count is only known to be >= 1 (counted at the end if b was never cut).
        int atB = 1;
        boolean bCounted = false;
        // the first two cuts: a little below and above a sample's estimate of the k-th score, so that
        // the halving starts from a bracket of a few per cent of the scores; then halving
        float[] guess = sampleGuesses(s, from, n, k);
        int guesses = guess == null ? 0 : guess.length;
        for (int g = 0; atB < k && (g < guesses || atA - atB > BRACKET_MAX); g++) {
            float t = g < guesses ? guess[g] : a + (b - a) * 0.5f;
            if (!(t > a && t < b)) {
                if (g < guesses) {
                    continue; // a guess outside the bracket
                }
                break; // adjacent floats: the bracket holds ties only
            }
            int at = Vectors.countAtLeast(s, from, n, t);
            if (at >= k) {
                a = t;
                atA = at;
            } else {
                b = t;
                atB = at;
                bCounted = true;
            }
        }
        if (!bCounted) {
            atB = Vectors.countAtLeast(s, from, n, b);
        }
        // taken whole: the scores >= b (fewer than k); the bracket: [a, b). Only when k or more
        // scores tie at the maximum b (the loop never ran) is the bracket [b, b] and nothing taken whole.
        boolean tiesAtMax = atB >= k;
        float lo = tiesAtMax ? b : a;
        float hi = tiesAtMax ? Math.nextUp(b) : b; // nothing reaches nextUp(max)
        int above = tiesAtMax ? 0 : atB;
        int need = k - above;
        long[] bits = new long[(n + 63) >>> 6];
        int[] inside = new int[Math.max(1, (tiesAtMax ? atB : atA) - above)];
        int m = Vectors.split(s, from, n, lo, hi, bits, inside);
        long[] bracket = scratch(Math.max(1, m));
        for (int j = 0; j < m; j++) {
            bracket[j] = pack(s[from + inside[j]], inside[j]);
        }
        if (need < m) {
            selectLargest(bracket, m, need);
        }
        setPacked(bits, bracket, need);
        return indices(bits, k);
    }

    private static final int GUESS_SAMPLE = 256;

    /**
     * Two cuts around the k-th score estimated from a strided sample of {@value #GUESS_SAMPLE}: the
     * sample's scores about three standard deviations of the rank below and above it (either may
     * miss; a miss only costs a pass). {@code null} when the sample is mostly NaN.
     */
    private static float[] sampleGuesses(float[] s, int from, int n, int k) {
        float[] sample = new float[GUESS_SAMPLE];
        int ns = 0;
        int step = Math.max(1, n / GUESS_SAMPLE);
        for (int i = from; i < from + n && ns < GUESS_SAMPLE; i += step) {
            if (s[i] == s[i]) {
                sample[ns++] = s[i];
            }
        }
        if (ns < GUESS_SAMPLE / 4) {
            return null;
        }
        java.util.Arrays.sort(sample, 0, ns);
        double rank = (double) k / n * ns; // expected rank of the k-th from the top
        double margin = 3 * Math.sqrt(rank + 1) + 2;
        int below = (int) Math.min(ns - 1, Math.ceil(rank + margin));
        int above = (int) Math.max(0, Math.floor(rank - margin));
        return new float[] {sample[ns - 1 - below], sample[ns - 1 - above]};
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
    private static int prefiltered(float[] scores, int from, int n, int k, Admit admit, long[] packed) {
        if (k > n / 2) {
            return -1; // a large share: the threshold would save little
        }
        float[] sample = new float[SAMPLE];
        int ns = 0;
        int step = n / SAMPLE;
        for (int i = 0; i < n && ns < SAMPLE; i += step) {
            float v = scores[from + i];
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
            float v = scores[from + i];
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
