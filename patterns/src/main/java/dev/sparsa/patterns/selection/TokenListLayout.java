package dev.sparsa.patterns.selection;

import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import java.util.Arrays;

/**
 * Compiles one key list per query row (an indexer's top-k tokens, a per-query selection) into a
 * {@link HeadLayout} with exactly that token set, in the form FlashMLA's sparse prefill runs: every
 * row is a tile of its own whose listed keys are unconditional (they were cut to what the row may
 * see), so the query heads that share the layout (the heads of a GQA group, or all heads when the
 * selection is shared) are stacked into one tile by the kernel, each key loaded once for all of
 * them. Two refinements fill tiles further:
 * <ul>
 *   <li>consecutive rows with the same list share one tile (up to {@code tileRows} rows);
 *   <li>consecutive rows whose list is their whole visible prefix (early rows of a causal top-k
 *       whose budget exceeds what they see) share dense causal tiles.
 * </ul>
 * Keys a row may not see under the context's causality are dropped; a row with no key is left out
 * of every tile (kernels write 0 and LSE −∞ there). Rows are disjoint across tiles. O(rows + keys).
 */
public final class TokenListLayout {
    private TokenListLayout() {
    }

    /** The sorted, distinct keys of one row (any keys in {@code [0, keyLength)}; invisible ones are dropped). */
    @FunctionalInterface
    public interface RowKeys {
        int[] keys(int row);
    }

    /** Compiles the rows' lists. */
    public static HeadLayout compile(PlanContext ctx, RowKeys rows) {
        return compile(ctx, rows, 0);
    }

    /**
     * {@link #compile(PlanContext, RowKeys)} with a hint of the keys in all (the layout's lists are
     * sized once instead of regrown).
     */
    public static HeadLayout compile(PlanContext ctx, RowKeys rows, long expectedKeys) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate())
                .reserve(ctx.queryLength(), 0, (int) Math.min(Math.max(0, expectedKeys), Integer.MAX_VALUE - 8));
        int nq = ctx.queryLength();
        int tileRows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        // the open group: consecutive rows of one kind (dense prefix, or one shared list)
        int start = -1;
        int count = 0;
        boolean dense = false;
        int[] shared = null;
        int sharedLen = 0;
        for (int r = 0; r < nq; r++) {
            int[] keys = rows.keys(r);
            long last = Plans.lastVisibleKey(ctx, r);
            int n = visibleCount(keys, last);
            boolean rowDense = n > 0 && n == last + 1; // sorted distinct keys in [0, last]: all of them
            boolean extend = start >= 0 && count < tileRows && n > 0
                    && (rowDense ? dense : !dense && n == sharedLen && Arrays.equals(keys, 0, n, shared, 0, n));
            if (!extend && start >= 0) {
                emit(b, ctx, start, count, dense, shared, sharedLen, cols);
                start = -1;
            }
            if (n == 0) {
                continue;
            }
            if (start < 0) {
                start = r;
                count = 0;
                dense = rowDense;
                shared = keys;
                sharedLen = n;
            }
            count++;
        }
        if (start >= 0) {
            emit(b, ctx, start, count, dense, shared, sharedLen, cols);
        }
        return b.build();
    }

    /** How many of the ascending {@code keys} are at most {@code last}. */
    static int visibleCount(int[] keys, long last) {
        if (keys.length == 0 || keys[keys.length - 1] <= last) {
            return keys.length;
        }
        int lo = 0;
        int hi = keys.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] <= last) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    private static void emit(HeadLayoutBuilder b, PlanContext ctx, int start, int count, boolean dense, int[] keys, int n,
                             int cols) {
        HeadLayoutBuilder.Tile t = b.tile(start, count);
        if (dense) {
            long last = Plans.lastVisibleKey(ctx, start + count - 1);
            t.blocksByPredicate(0, (int) (last / cols));
        } else {
            // every key is visible to the group's first row, hence to all of its rows
            t.unconditionalAll(keys, 0, n);
        }
        t.end();
    }
}
