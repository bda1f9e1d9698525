package dev.sparsa.pattern;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * Dense attention as a plan: every key block of every tile, full where the causal mask (if any)
 * admits all of it, partial on the diagonal, skipped above it. The baseline every speed-up is a
 * ratio to.
 */
public final class Dense implements Pattern {
    /** The one instance. */
    public static final Dense INSTANCE = new Dense();

    private Dense() {
    }

    @Override
    public String name() {
        return "dense";
    }

    @Override
    public SparsePlan plan(PlanContext context) {
        HeadLayoutBuilder b = HeadLayout.builder(context, context.basePredicate());
        int rows = context.geometry().tileRows();
        int cols = context.geometry().blockCols();
        long nk = context.keyLength();
        for (int start = 0; start < context.queryLength(); start += rows) {
            int count = Math.min(rows, context.queryLength() - start);
            int last = context.keyBlocks() - 1;
            if (context.causal()) {
                // the last key the tile's last row can see under causality
                long lastKey = Math.min(nk - 1, (long) start + count - 1 + context.queryOffset());
                last = lastKey < 0 ? -1 : (int) (lastKey / cols);
            }
            HeadLayoutBuilder.Tile tile = b.tile(start, count);
            tile.blocksByPredicate(0, last);
            tile.end();
        }
        return SparsePlan.uniform(context, b.build(), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
