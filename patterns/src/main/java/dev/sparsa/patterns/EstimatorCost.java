package dev.sparsa.patterns;

import dev.sparsa.pattern.PlanningCost;
import dev.sparsa.plan.PlanContext;

/**
 * The cost model of an estimator's scoring: how many multiply-adds it spends on Q·K (or pooled or
 * partial products) to choose its keys, next to the {@code Nq·Nk·D} (half of it when causal) that
 * dense attention spends on Q·Kᵀ alone for the same call. A ratio near 1 means the estimator costs
 * as much as dense attention (exact per-query top-k, TokenSelect, exact per-block mass) and is a
 * reference or a decode-time tool, not a prefill speed-up. The drop-in call's dispatch reads the
 * same number through {@link PlanningCost}.
 */
public interface EstimatorCost extends PlanningCost {

    /** Multiply-adds of the scoring over all (batch, query head) slices of the call. */
    @Override
    double scoringMacs(PlanContext ctx);

    /** Multiply-adds of dense Q·Kᵀ for the call (causal pairs only when causal). */
    static double denseScoreMacs(PlanContext ctx) {
        return (double) ctx.admissiblePairsPerSlice() * ctx.shape().slices() * ctx.shape().headDim();
    }

    /** {@link #scoringMacs} over {@link #denseScoreMacs}: the estimator's cost in units of dense Q·Kᵀ. */
    default double relativeToDense(PlanContext ctx) {
        double dense = denseScoreMacs(ctx);
        return dense == 0 ? 0 : scoringMacs(ctx) / dense;
    }
}
