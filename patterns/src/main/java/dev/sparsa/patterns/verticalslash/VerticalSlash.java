package dev.sparsa.patterns.verticalslash;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.blocksparse.BlockLists;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.Arrays;

/**
 * MInference's vertical-slash pattern (Jiang et al., "MInference 1.0") from explicit index sets:
 * vertical columns {@code V} (key positions) and slash diagonals {@code S} (offsets {@code o = p − k},
 * 0 is the main diagonal), the same for every head, in either {@link VsSemantics}. The estimator
 * {@link VerticalSlashEstimator} chooses the sets from Q and K; both compile through {@link #layout}.
 *
 * <p>Throws {@link IllegalArgumentException} if a set is null or a column is negative
 */
public final class VerticalSlash implements Pattern {
    private final int[] columns;
    private final int[] diagonals;
    private final VsSemantics semantics;

    public VerticalSlash(int[] columns, int[] diagonals, VsSemantics semantics) {
        Checks.notNull("columns", columns);
        Checks.notNull("diagonals", diagonals);
        this.semantics = Checks.notNull("semantics", semantics);
        this.columns = Arrays.stream(columns).sorted().distinct().toArray();
        this.diagonals = Arrays.stream(diagonals).sorted().distinct().toArray();
        if (this.columns.length > 0 && this.columns[0] < 0) {
            throw new IllegalArgumentException("columns: key positions must be >= 0, got " + this.columns[0]);
        }
    }

    @Override
    public String name() {
        return "verticalSlash(" + columns.length + " columns, " + diagonals.length + " diagonals, "
                + semantics.name().toLowerCase().replace('_', '-') + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        return SparsePlan.uniform(ctx, layout(ctx, columns, diagonals, semantics), name());
    }

    /**
     * The layout of sorted distinct {@code columns} and {@code diagonals} (columns at or beyond the
     * key length are ignored) in the given semantics.
     */
    public static HeadLayout layout(PlanContext ctx, int[] columns, int[] diagonals, VsSemantics semantics) {
        int nk = ctx.keyLength();
        int usable = 0;
        while (usable < columns.length && columns[usable] < nk) {
            usable++;
        }
        final int nCols = usable;
        if (semantics == VsSemantics.EXACT) {
            return ExactVerticalSlashLayout.build(ctx, Arrays.copyOf(columns, nCols), diagonals);
        }
        return semantics == VsSemantics.BLOCK_EXPANDED
                ? minferenceRanges(ctx, Arrays.copyOf(columns, nCols), diagonals)
                : gridBlocks(ctx, columns, nCols, diagonals);
    }

    /**
     * {@link VsSemantics#BLOCK_EXPANDED}: per tile, the merged {@code T}-key ranges of the diagonals
     * and the columns outside them, as MInference's {@code convert_vertical_slash_indexes} builds
     * them. O(tiles × (diagonals + columns)).
     */
    private static HeadLayout minferenceRanges(PlanContext ctx, int[] columns, int[] diagonals) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nk = ctx.keyLength();
        long[] starts = new long[diagonals.length];
        long[] ends = new long[diagonals.length];
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            long end = (long) start + ctx.queryOffset() + rows; // E: the tile's end as if it were full
            long limit = Math.min(nk, Plans.lastVisibleKey(ctx, start + count - 1) + 1);
            int ranges = 0;
            for (int i = diagonals.length - 1; i >= 0; i--) { // largest offset first
                if (diagonals[i] >= end) {
                    continue;
                }
                long e = Math.max(end - diagonals[i], rows);
                if (ranges == 0 || e > ends[ranges - 1] + rows) {
                    starts[ranges] = e - rows;
                    ends[ranges++] = e;
                } else if (e > ends[ranges - 1]) {
                    ends[ranges - 1] += rows;
                }
            }
            for (int i = 0; i < ranges; i++) {
                BlockLists.emitRange(t, Math.max(0, starts[i]), Math.min(limit, ends[i]), cols, nk);
            }
            long columnEnd = ranges == 0 ? limit : Math.min(limit, ends[ranges - 1]);
            for (int i = 0, r = 0; i < columns.length && columns[i] < columnEnd; i++) {
                while (r < ranges && ends[r] <= columns[i]) {
                    r++;
                }
                if (r == ranges || columns[i] < starts[r]) {
                    t.gather(columns[i]);
                }
            }
            t.end();
        }
        return b.build();
    }

    /** {@link VsSemantics#GRID_EXPANDED}: the grid blocks the diagonals touch, and the columns outside them. */
    private static HeadLayout gridBlocks(PlanContext ctx, int[] columns, int nCols, int[] diagonals) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nb = ctx.keyBlocks();
        boolean[] mark = new boolean[nb];
        int[] touched = new int[nb];
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            long pLo = (long) start + ctx.queryOffset();
            long pHi = pLo + count - 1;
            long lastKey = Plans.lastVisibleKey(ctx, start + count - 1);
            int nt = 0;
            for (int o : diagonals) {
                long k0 = Math.max(0, pLo - o);
                long k1 = Math.min(lastKey, pHi - o);
                if (k0 > k1) {
                    continue;
                }
                for (int blk = (int) (k0 / cols); blk <= (int) (k1 / cols); blk++) {
                    if (!mark[blk]) {
                        mark[blk] = true;
                        touched[nt++] = blk;
                    }
                }
            }
            for (int i = 0; i < nt; i++) {
                t.blockByPredicate(touched[i]);
            }
            for (int i = 0; i < nCols && columns[i] <= lastKey; i++) {
                if (!mark[columns[i] / cols]) {
                    t.gather(columns[i]);
                }
            }
            for (int i = 0; i < nt; i++) {
                mark[touched[i]] = false;
            }
            t.end();
        }
        return b.build();
    }

    @Override
    public String toString() {
        return name();
    }
}
