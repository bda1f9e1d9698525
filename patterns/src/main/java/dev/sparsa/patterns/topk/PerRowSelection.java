package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;

/**
 * The shared road of per-query selections: score each row's visible keys, keep the best {@code k}
 * that are not forced (ties to the lower index; {@code k} at or above what is left keeps all of it),
 * union the forced keys, and compile the per-row sets exactly. Memory O(N · (k + forced)).
 */
public final class PerRowSelection {
    private PerRowSelection() {
    }

    /** Selected (not forced) keys of every row, sorted. */
    public static int[][] select(PlanContext ctx, int k, ForcedKeys forced, RowScorer scorer) {
        int nq = ctx.queryLength();
        int[][] out = new int[nq][];
        float[] scores = new float[Math.max(1, ctx.keyLength())];
        for (int r = 0; r < nq; r++) {
            long last = Plans.lastVisibleKey(ctx, r);
            if (last < 0 || k == 0) {
                out[r] = new int[0];
                continue;
            }
            scorer.score(r, (int) last, scores);
            long p = (long) r + ctx.queryOffset();
            out[r] = TopSelect.top(scores, (int) last + 1, k, key -> !forced.forced(p, key));
        }
        return out;
    }

    /** Query rows scored together by {@link #selectFromPanels}: each key panel is loaded once for them. */
    private static final int ROWS_PER_PASS = 16;

    /**
     * {@link #select} with the scores {@code Vectors.dot(q, row, keys, key, d)} (bitwise, so the same
     * selection) from key panels: {@value #ROWS_PER_PASS} rows at a time, each row only up to its last
     * visible key, every panel loaded once for the rows of a pass instead of one dot product per key
     * and row; forced keys are excluded as NaN scores (never chosen) rather than by a filter.
     */
    public static int[][] selectFromPanels(PlanContext ctx, int k, ForcedKeys forced, KeyPanels panels, float[] q) {
        int nq = ctx.queryLength();
        int[][] out = new int[nq][];
        int stride = KeyPanels.paddedLength(Math.max(1, ctx.keyLength()));
        float[] scores = new float[ROWS_PER_PASS * stride];
        int[] counts = new int[ROWS_PER_PASS];
        for (int r0 = 0; r0 < nq; r0 += ROWS_PER_PASS) {
            int rows = Math.min(ROWS_PER_PASS, nq - r0);
            int most = 0;
            for (int j = 0; j < rows; j++) {
                counts[j] = (int) (Plans.lastVisibleKey(ctx, r0 + j) + 1);
                most = Math.max(most, counts[j]);
            }
            if (most > 0 && k > 0) {
                // every row of the pass up to the pass's last visible key (at most 15 keys past a row's
                // own, never read): the kernels for four query rows × four panels run
                panels.dots(q, r0, rows, most, scores, stride);
            }
            for (int j = 0; j < rows; j++) {
                if (counts[j] <= 0 || k == 0) {
                    out[r0 + j] = new int[0];
                    continue;
                }
                // forced keys as NaN, which is never chosen: the selection without a per-key filter
                // (which would keep TopSelect off its vector path)
                long p = (long) r0 + j + ctx.queryOffset();
                int base = j * stride;
                java.util.Arrays.fill(scores, base, base + Math.min(forced.sinks(), counts[j]), Float.NaN);
                if (forced.window() > 0) {
                    long lo = Math.max(0, p - forced.window() + 1);
                    long hi = Math.min(p, counts[j] - 1L);
                    if (lo <= hi) {
                        java.util.Arrays.fill(scores, base + (int) lo, base + (int) hi + 1, Float.NaN);
                    }
                }
                out[r0 + j] = TopSelect.top(scores, base, counts[j], k, null);
            }
        }
        return out;
    }

    /** The layout of forced ∪ selected per row. */
    public static HeadLayout layout(PlanContext ctx, ForcedKeys forced, int[][] selected) {
        return TokenSetEncoder.encode(ctx, (row, sink) -> {
            forced.keys(ctx, row, sink);
            for (int key : selected[row]) {
                sink.accept(key, 0f);
            }
        });
    }

    /** @throws IllegalArgumentException when k is negative, or 0 with nothing forced */
    static int checkK(int k, ForcedKeys forced) {
        if (k < 0 || (k == 0 && !forced.any())) {
            throw new IllegalArgumentException("k: must be >= 1 (or 0 when sinks or a window are forced), got " + k);
        }
        return k;
    }
}
