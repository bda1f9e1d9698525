package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * Exact top-k per query: each row keeps the {@code k} visible keys with the largest {@code q·k}
 * (ties to the lower index) besides its {@link ForcedKeys}, which are always kept and not counted.
 * It needs every score, so in prefill it <b>costs as much as dense attention</b> (O(N² · headDim)
 * time, computed row by row: O(N) scratch, O(N · k) result): it is the reference the cheaper
 * estimators are measured against, and the decode-time selection (one query row). Per (batch, query
 * head) slice.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code k < 0}, or {@code k == 0} with nothing forced
 */
public final class TopKPerQuery extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int k;
    private final ForcedKeys forced;

    public TopKPerQuery(int k, ForcedKeys forced) {
        this.forced = Checks.notNull("forced", forced);
        this.k = PerRowSelection.checkK(k, forced);
    }

    public int k() {
        return k;
    }

    public ForcedKeys forced() {
        return forced;
    }

    /** The same k with {@code s} sinks forced. */
    public TopKPerQuery withSinks(int s) {
        return new TopKPerQuery(k, new ForcedKeys(s, forced.window()));
    }

    /** The same k with a causal window of {@code w} keys forced. */
    public TopKPerQuery withWindow(int w) {
        return new TopKPerQuery(k, new ForcedKeys(forced.sinks(), w));
    }

    @Override
    public String name() {
        return "topK(" + k + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        int d = ctx.shape().headDim();
        return Plans.perSlice(ctx, (b, h) -> {
            float[] qr = Vectors.rows(q, b, h);
            float[] kr = Vectors.rows(kt, b, ctx.shape().kvHeadOf(h));
            int[][] sel = PerRowSelection.select(ctx, k, forced, (row, last, s) -> {
                for (int key = 0; key <= last; key++) {
                    s[key] = Vectors.dot(qr, row, kr, key, d);
                }
            });
            return PerRowSelection.layout(ctx, forced, sel);
        }, name());
    }

    /** Every visible score: exactly dense Q·Kᵀ. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return dev.sparsa.patterns.EstimatorCost.denseScoreMacs(ctx);
    }
}
