package dev.sparsa.patterns.topk;

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
