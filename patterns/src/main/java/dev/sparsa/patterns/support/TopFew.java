package dev.sparsa.patterns.support;

/**
 * The best few of a short score row, by the rule of {@link TopSelect}
 * (larger first, ties to the lower index, {@code -0} equal to {@code +0}, NaN never): one pass that
 * keeps the {@code k} best seen so far in order, O(n) when most candidates lose to the current
 * k-th (a row of block scores with a small budget), without the packing and selection machinery
 * that pays off on long rows. Not thread-safe (reuses its buffers).
 */
public final class TopFew {
    private int[] best = new int[16];

    /**
     * The (at most) {@code k} best indices of {@code scores[from, from + n)} (relative to {@code from}),
     * ascending by index, as a new array.
     */
    public int[] top(float[] scores, int from, int n, int k) {
        if (k <= 0 || n <= 0) {
            return new int[0];
        }
        k = Math.min(k, n); // a budget past the row keeps the whole row
        if (best.length < k) {
            best = new int[k];
        }
        int m = 0; // best[0, m): candidates, best first
        for (int i = 0; i < n; i++) {
            float v = scores[from + i];
            if (v != v) {
                continue;
            }
            if (m == k && !(v > scores[from + best[m - 1]])) {
                continue; // not better than the k-th (an equal score loses: its index is higher)
            }
            int at = m == k ? m - 1 : m++;
            while (at > 0 && v > scores[from + best[at - 1]]) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = i;
        }
        int[] out = java.util.Arrays.copyOf(best, m);
        java.util.Arrays.sort(out);
        return out;
    }
}
