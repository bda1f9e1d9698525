package dev.sparsa.patterns.window;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * A two-sided window: row at position {@code p} admits keys with {@code |p − k| ≤ radius}
 * (2·radius + 1 keys away from the edges), under the context's causality (causal contexts keep
 * only the past half). The local attention of Longformer and of encoder models.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code radius < 0}
 */
public record SymmetricWindow(int radius) implements Pattern {
    public SymmetricWindow {
        Checks.atLeast("radius", radius, 0);
    }

    @Override
    public String name() {
        return "symmetricWindow(" + radius + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        return SparsePlan.uniform(ctx, SlidingWindow.bandLayout(ctx, ctx.basePredicate().withBand(-radius, radius),
                -radius, radius, 0), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
