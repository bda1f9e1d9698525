package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.Arrays;

/**
 * Global tokens (Longformer's global attention, Beltagy et al.; BigBird's ITC global tokens, Zaheer
 * et al.): the query rows at the listed positions attend to every key, and every row attends to the
 * listed key columns, under the context's causality. Rows are absolute positions ({@code qIndex +
 * queryOffset}), like the columns, so a chunk prefilled against a cache sees the one-shot layout. On
 * its own it is only the global part; unite it with a local pattern ({@link Union}) for
 * Longformer/BigBird.
 *
 * <p>Throws {@link IllegalArgumentException} if a row or column is negative
 */
public final class GlobalTokens implements Pattern {
    private final int[] rows;
    private final int[] columns;

    public GlobalTokens(int[] rows, int[] columns) {
        this.rows = sortedDistinctNonNegative("rows", rows);
        this.columns = sortedDistinctNonNegative("columns", columns);
    }

    /** The same positions as global rows and global columns (Longformer's usual choice, self-attention). */
    public static GlobalTokens positions(int... positions) {
        return new GlobalTokens(positions, positions);
    }

    private static int[] sortedDistinctNonNegative(String name, int[] a) {
        if (a == null) {
            throw new IllegalArgumentException(name + ": must not be null");
        }
        int[] s = Arrays.stream(a).sorted().distinct().toArray();
        if (s.length > 0 && s[0] < 0) {
            throw new IllegalArgumentException(name + ": indices must be >= 0, got " + s[0]);
        }
        return s;
    }

    @Override
    public String name() {
        return "global(" + rows.length + " rows, " + columns.length + " columns)";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        return SparsePlan.uniform(ctx, TokenSetEncoder.encode(ctx, (row, sink) -> {
            long last = Plans.lastVisibleKey(ctx, row);
            long position = (long) row + ctx.queryOffset();
            if (position >= 0 && position <= Integer.MAX_VALUE && Arrays.binarySearch(rows, (int) position) >= 0) {
                for (int k = 0; k <= last; k++) {
                    sink.accept(k, 0f);
                }
                return;
            }
            for (int c : columns) {
                if (c > last) {
                    break;
                }
                sink.accept(c, 0f);
            }
        }), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
