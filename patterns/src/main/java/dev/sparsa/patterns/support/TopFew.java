package dev.sparsa.patterns.support;

/**
 * The best few of a short score row, by the rule of {@link TopSelect}
 * (larger first, ties to the lower index, {@code -0} equal to {@code +0}, NaN never): one pass from
 * the last score to the first that keeps the best seen so far in a heap whose root is the worst of
 * them, O(n) compares when most candidates lose to the root and O(log k) per candidate that wins;
 * the winners come out ascending through a bit set, without a sort.
 *
 * <p>Rows that resemble each other (the block scores of neighbouring queries) can skip most of the
 * scan: given a guess {@code t} at or a little below the {@code k}-th best score ({@link
 * #nextGuess()} after the previous row), one vector pass packs the scores {@code >= t} and their
 * indices ({@link Vectors#compressAtLeast}); when there are {@code k} to {@code k + }{@value #SLACK}
 * of them, every other score is below {@code k} scores and cannot be kept, so the result is those
 * indices less the few worst ({@link Vectors#keepBest}), without a heap. A guess that leaves fewer
 * than {@code k} or more than {@code k + }{@value #SLACK} is first moved by up to {@value #REFINE}
 * counting vector passes (by the step the last moves took, then between the two thresholds that
 * bracket the wanted count) and the scores packed again; if that fails too, a bit set of the scores
 * at or above the last threshold is marked: when they are at least {@code k} only those enter the
 * heap, when they are fewer they are all kept and the heap only picks the rest among the lower
 * scores. A budget of the whole row keeps every score but NaN (one vector pass). The heap keeps
 * {@value #SLACK} more than {@code k} (the extra ones are dropped at the end), so that the next guess
 * sits a little below the {@code k}-th and holds for the next row more often: the next guess is the
 * {@code (k + }{@value #MID}{@code )}-th best, the middle of the counts accepted. The result is the same
 * with any guess or none. Not thread-safe (reuses its buffers).
 */
public final class TopFew {
    /** Scores kept past the k-th, to learn a guess a little below it. */
    private static final int SLACK = 6;
    /** The rank past the k-th that the next row's guess aims at: the middle of the accepted counts. */
    private static final int MID = SLACK / 2;
    /** Vector passes that may move a guess that missed before the scalar paths take over. */
    private static final int REFINE = 3;

    private int[] heap = new int[16 + SLACK];
    private long[] bits = new long[8];
    private long[] winners = new long[8];
    /** The scores at or above a guess and their indices ({@link Vectors#compressAtLeast}). */
    private float[] candV = new float[0];
    private int[] candI = new int[0];
    private int m;
    private float rootScore;
    private float nextGuess = Float.NaN;
    /** How far the last refined guesses moved: the first step of the next refinement. */
    private float step = Float.NaN;

    /**
     * The (at most) {@code k} best indices of {@code scores[from, from + n)} (relative to {@code from}),
     * ascending by index, as a new array.
     */
    public int[] top(float[] scores, int from, int n, int k) {
        return top(scores, from, n, k, Float.NaN);
    }

    /**
     * {@link #top(float[], int, int, int)} with a guess of the {@code k}-th best score (NaN: none);
     * the guess changes the speed, never the result.
     */
    public int[] top(float[] scores, int from, int n, int k, float guess) {
        int[] result = new int[Math.max(0, Math.min(k, n))];
        int c = top(scores, from, n, k, guess, result, 0);
        return c == result.length ? result : java.util.Arrays.copyOf(result, c);
    }

    /**
     * {@link #top(float[], int, int, int, float)} written to {@code out[at, at + count)} instead of a
     * new array; returns the count ({@code ≤ min(k, n)}, fewer only when NaNs leave fewer scores).
     * {@code out} must have room for {@code min(k, n)} indices from {@code at}.
     */
    public int top(float[] scores, int from, int n, int k, float guess, int[] out, int at) {
        nextGuess = Float.NaN;
        if (k <= 0 || n <= 0) {
            return 0;
        }
        k = Math.min(k, n); // a budget past the row keeps the whole row
        int keep = Math.min(n, k + SLACK);
        if (heap.length < keep) {
            heap = new int[keep];
        }
        int words = (n + 63) >>> 6;
        if (bits.length < words) {
            bits = new long[words];
            winners = new long[words];
        }
        m = 0;
        int above = -1;
        if (candV.length < n + Vectors.compressSlack()) {
            candV = new float[n + Vectors.compressSlack()];
            candI = new int[n + Vectors.compressSlack()];
        }
        if (n == k) {
            // a budget of the whole row: every score but NaN is kept, in one vector pass
            int c = Vectors.compressAtLeast(scores, from, n, Float.NEGATIVE_INFINITY, candV, candI);
            if (c == k) {
                nextGuess = Vectors.keepBest(candV, candI, c, k, c, out, at);
                return k;
            }
            System.arraycopy(candI, 0, out, at, c);
            return c;
        }
        if (guess == guess) {
            above = Vectors.compressAtLeast(scores, from, n, guess, candV, candI);
            if (above >= k && above <= keep) {
                return fromCandidates(above, k, guess, out, at);
            }
            if ((above < k || above > keep) && Float.isFinite(guess)) {
                // a few more vector passes move the threshold until k to k + SLACK scores are at
                // or above it: by a learned step, then between the two thresholds that bracket it
                float t = guess;
                float lo = Float.NaN; // a threshold with more than keep scores at or above it
                float hi = Float.NaN; // one with fewer than k
                int cLo = 0;
                int cHi = 0;
                for (int pass = 0; pass < REFINE && (above < k || above > keep); pass++) {
                    if (above < k) {
                        hi = t;
                        cHi = above;
                    } else {
                        lo = t;
                        cLo = above;
                    }
                    float next;
                    if (lo == lo && hi == hi) {
                        float target = k + (keep - k) / 2f;
                        next = hi + (lo - hi) * ((cHi - target) / (float) (cHi - cLo));
                        if (!(next > lo && next < hi)) {
                            next = lo + (hi - lo) * 0.5f;
                        }
                        if (!(next > lo && next < hi)) {
                            break; // no float between them
                        }
                    } else {
                        float st = step > 0 && Float.isFinite(step) ? step : Math.max(Math.abs(t) * 0.125f, 1e-6f);
                        next = above < k ? t - st : t + st;
                        if (!Float.isFinite(next)) {
                            break;
                        }
                    }
                    t = next;
                    above = Vectors.countAtLeast(scores, from, n, t);
                }
                if (above < k && lo == lo) {
                    t = lo; // the heap picks among the scores at or above the lower threshold
                    above = Vectors.countAtLeast(scores, from, n, t);
                }
                float moved = Math.abs(t - guess);
                step = step > 0 && Float.isFinite(step) ? 0.5f * step + 0.5f * moved : moved;
                guess = t;
                if (above >= k && above <= keep) {
                    above = Vectors.compressAtLeast(scores, from, n, guess, candV, candI);
                    return fromCandidates(above, k, guess, out, at);
                }
            }
            above = mark(scores, from, n, guess, words); // the bit set the paths below walk
        }
        if (above >= k) {
            // only the scores >= guess can be among the k best; offered from the last index down
            long[] b = bits;
            for (int w = words - 1; w >= 0; w--) {
                long word = b[w];
                while (word != 0) {
                    int bit = 63 - Long.numberOfLeadingZeros(word);
                    word &= ~(1L << bit);
                    int i = (w << 6) + bit;
                    offer(scores, from, i, scores[from + i], keep);
                }
            }
        } else if (above > 0) {
            // the guess was high: the scores >= guess are all kept, and the heap picks the best
            // k − above of the others
            int want = k - above;
            int keepBelow = Math.min(n - above, want + SLACK);
            for (int i = n - 1; i >= 0; i--) {
                float v = scores[from + i];
                if (v < guess) {
                    offer(scores, from, i, v, keepBelow);
                }
            }
            popTo(scores, from, want);
            System.arraycopy(bits, 0, winners, 0, words); // the winners' bit set was all clear
            return collect(m + above, out, at);
        } else {
            for (int i = n - 1; i >= 0; i--) {
                float v = scores[from + i];
                if (v == v) {
                    offer(scores, from, i, v, keep);
                }
            }
        }
        popTo(scores, from, k);
        return collect(m, out, at);
    }

    /** Marks the scores {@code >= t} in {@code bits} (one vector pass) and counts them. */
    private int mark(float[] scores, int from, int n, float t, int words) {
        long[] b = bits;
        Vectors.bitsAtLeast(scores, from, n, t, b);
        if ((n & 63) != 0) {
            b[words - 1] &= (1L << n) - 1; // bits past n (a longer row's) do not count
        }
        int c = 0;
        for (int w = 0; w < words; w++) {
            c += Long.bitCount(b[w]);
        }
        return c;
    }

    /**
     * Drops the worst kept until at most {@code want} remain; the next guess becomes the {@code (want
     * + MID)}-th best kept, or the worst kept if fewer (at or below the {@code want}-th best), if
     * {@code want} were kept.
     */
    private void popTo(float[] scores, int from, int want) {
        if (m >= want) {
            nextGuess = rootScore;
        }
        while (m > want) {
            if (m == want + MID) {
                nextGuess = rootScore; // the (want + MID)-th best: the middle of the accepted counts
            }
            int last = heap[--m];
            siftDown(scores, from, last, scores[from + last]);
        }
    }

    /**
     * The {@code total} winners: the heap's and any bits already set in {@code winners}, ascending, to
     * {@code result[at, at + total)}; clears the bits and returns {@code total}.
     */
    private int collect(int total, int[] result, int at) {
        int[] h = heap;
        long[] out = winners;
        for (int j = 0; j < m; j++) {
            out[h[j] >>> 6] |= 1L << h[j];
        }
        int c = at;
        for (int w = 0; c < at + total; w++) {
            long word = out[w];
            out[w] = 0;
            while (word != 0) {
                result[c++] = (w << 6) + Long.numberOfTrailingZeros(word);
                word &= word - 1;
            }
        }
        return total;
    }

    /**
     * The k best when only {@code c} scores, {@code k <= c <= k + SLACK}, are {@code >= guess} (the
     * usual case with a good guess): their scores and indices, ascending by index, are in {@code
     * candV} and {@code candI}; the result is those indices less the {@code c − k} worst (lowest
     * score, then highest index), found by vector minima over the candidates; no heap. The next
     * guess aims at the middle of the accepted counts: the {@code (k + MID)}-th best when it is among
     * the candidates, otherwise {@code guess} itself (the nearest known threshold above it).
     */
    private int fromCandidates(int c, int k, float guess, int[] result, int resultAt) {
        int g = Math.min(c, k + MID);
        float gth = Vectors.keepBest(candV, candI, c, k, g, result, resultAt);
        nextGuess = g == k + MID ? gth : guess;
        return k;
    }

    /**
     * A guess for the next row: a score of the last row at or a little below its {@code k}-th best,
     * or NaN if it kept fewer than {@code k}.
     */
    public float nextGuess() {
        return nextGuess;
    }

    /** Offers index {@code i} (lower than every index offered before) of score {@code v} (not NaN) to a heap of {@code keep}. */
    private void offer(float[] scores, int from, int i, float v, int keep) {
        int[] h = heap;
        if (m < keep) {
            // sift up: every kept index is higher than i, so i is worse only at a strictly lower score
            int at = m++;
            while (at > 0) {
                int parent = (at - 1) >>> 1;
                if (!(v < scores[from + h[parent]])) {
                    break;
                }
                h[at] = h[parent];
                at = parent;
            }
            h[at] = i;
            rootScore = scores[from + h[0]];
            return;
        }
        if (v < rootScore) {
            return; // worse than the worst kept (an equal score wins: its index is lower)
        }
        siftDown(scores, from, i, v);
    }

    /** Puts index {@code i} of score {@code v} at the root of the heap {@code heap[0, m)} and sifts it down. */
    private void siftDown(float[] scores, int from, int i, float v) {
        int[] h = heap;
        int at = 0;
        while (true) {
            int child = 2 * at + 1;
            if (child >= m) {
                break;
            }
            int right = child + 1;
            if (right < m && worse(scores, from, h[right], h[child])) {
                child = right;
            }
            int c = h[child];
            float cv = scores[from + c];
            if (v < cv || (v == cv && i > c)) {
                break; // i is worse than the worse child: it stays above
            }
            h[at] = c;
            at = child;
        }
        h[at] = i;
        rootScore = scores[from + h[0]];
    }

    /** Whether index {@code a} ranks below index {@code b}: a lower score, or an equal one at a higher index. */
    private static boolean worse(float[] scores, int from, int a, int b) {
        float va = scores[from + a];
        float vb = scores[from + b];
        return va < vb || (va == vb && a > b);
    }
}
