package dev.sparsa.patterns.window;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * 1-D neighbourhood attention (Hassani et al., "Neighborhood Attention Transformer"): row at position
 * {@code p} admits the {@code size} keys starting at {@code clamp(p − size/2, 0, keyLength − size)},
 * so the window shifts at the edges and every query sees exactly {@code size} keys (all keys when
 * {@code keyLength < size}). Meant for non-causal contexts; in a causal one the causal mask is
 * applied on top (so queries near the end see fewer keys).
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

    @Override
    public String toString() {
        return name();
    }
}
