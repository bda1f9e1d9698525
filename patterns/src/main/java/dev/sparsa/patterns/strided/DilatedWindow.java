package dev.sparsa.patterns.strided;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * A dilated causal window (Longformer's dilated sliding window, Beltagy et al.): row at position
 * {@code p} admits the {@code keys} keys {@code p, p − d, …, p − (keys−1)·d}, under causality.
 * One predicate: band {@code [0, (keys−1)·d]} and {@code δ mod d == 0}.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code keys < 1} or {@code dilation < 1}
 */
public record DilatedWindow(int keys, int dilation) implements Pattern {
    public DilatedWindow {
        Checks.atLeast("keys", keys, 1);
        Checks.atLeast("dilation", dilation, 1);
    }

    @Override
    public String name() {
        return "dilatedWindow(" + keys + " keys, dilation " + dilation + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        // a span past the largest distance any pair has changes nothing: clamp it (keys may be huge)
        long widest = Math.max(0, (long) ctx.queryLength() - 1 + ctx.queryOffset());
        int span = (int) Math.min((long) (keys - 1) * dilation, widest);
        var p = ctx.basePredicate().withBand(0, span).withStride(dilation, 0, false);
        return SparsePlan.uniform(ctx, SlidingWindow.bandLayout(ctx, p, 0, span, 0), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
