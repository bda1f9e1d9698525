package dev.sparsa.patterns.window;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * 1-D neighbourhood attention (Hassani et al., "Neighborhood Attention Transformer"), as NATTEN's
 * reference mask defines it ({@code get_win_start} / {@code get_win_end} in {@code
 * csrc/include/natten/cuda/reference/mask.hpp}, github.com/SHI-Labs/NATTEN; stride and dilation 1):
 * <ul>
 *   <li>non-causal: row at position {@code p} admits the {@code size} keys starting at {@code
 *       clamp(p − size/2, 0, keyLength − size)}, so the window shifts at the edges and every query
 *       sees exactly {@code size} keys (all keys when {@code keyLength < size});
 *   <li>causal: the {@code size} keys ending at the query, {@code [max(p − size + 1, 0), p]}: a
 *       sliding window, so the first {@code size − 1} positions see fewer keys.
 * </ul>
 *
 * <p>Throws {@link IllegalArgumentException} if {@code size < 1}
 */
public record NeighbourhoodWindow(int size) implements Pattern {
    public NeighbourhoodWindow {
        Checks.atLeast("size", size, 1);
    }

    @Override
    public String name() {
        return "neighbourhood(" + size + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (ctx.causal()) {
            return SparsePlan.uniform(ctx, causalWindow(ctx), name());
        }
        var p = ctx.basePredicate().withNeighbourhood(size);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nk = ctx.keyLength();
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            if (nk > 0) {
                long lo = p.neighbourhoodStart((long) start + ctx.queryOffset(), nk);
                long hi = Math.min(nk - 1L, p.neighbourhoodStart((long) start + count - 1 + ctx.queryOffset(), nk) + size - 1);
                t.blocksByPredicate((int) (lo / cols), (int) (hi / cols));
            }
            t.end();
        }
        return SparsePlan.uniform(ctx, b.build(), name());
    }

    /** The causal neighbourhood: the band {@code 0 ≤ p − k ≤ size − 1}. */
    private HeadLayout causalWindow(PlanContext ctx) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, size - 1));
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            long lo = Math.max(0, (long) start + ctx.queryOffset() - size + 1);
            long hi = Math.min(ctx.keyLength() - 1L, (long) start + count - 1 + ctx.queryOffset());
            if (lo <= hi) {
                t.blocksByPredicate((int) (lo / cols), (int) (hi / cols));
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
