package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.KeyVisitor;
import dev.sparsa.plan.PlanContext;

/**
 * Keys a selection always keeps, unioned with what it selects and not counted in its {@code k}:
 * the first {@code sinks} keys and the causal window of the last {@code window} keys up to the
 * query's own position (0 for none), under the context's causality.
 *
 * <p>Throws {@link IllegalArgumentException} if a count is negative
 */
public record ForcedKeys(int sinks, int window) {
    /** Nothing forced. */
    public static final ForcedKeys NONE = new ForcedKeys(0, 0);

    public ForcedKeys {
        Checks.atLeast("sinks", sinks, 0);
        Checks.atLeast("window", window, 0);
    }

    public boolean any() {
        return sinks > 0 || window > 0;
    }

    /** Whether key {@code k} is forced for query position {@code p}. */
    public boolean forced(long p, int k) {
        return k < sinks || (p - k >= 0 && p - k < window);
    }

    /** Reports the forced keys of {@code row} that the context admits. */
    public void keys(PlanContext ctx, int row, KeyVisitor sink) {
        long p = (long) row + ctx.queryOffset();
        long last = Plans.lastVisibleKey(ctx, row);
        for (int k = 0; k < sinks && k <= last; k++) {
            sink.accept(k, 0f);
        }
        for (long k = Math.max(sinks, p - window + 1); k <= Math.min(last, p); k++) {
            sink.accept((int) k, 0f);
        }
    }

    @Override
    public String toString() {
        return (sinks > 0 ? "+sinks(" + sinks + ")" : "") + (window > 0 ? "+window(" + window + ")" : "");
    }
}
