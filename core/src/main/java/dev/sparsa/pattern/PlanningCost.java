package dev.sparsa.pattern;

import dev.sparsa.plan.PlanContext;

/**
 * What planning a data-dependent pattern costs: the multiply-adds its estimator spends scoring Q
 * against K (or pooled and partial products) to choose keys, over every (batch, query head) slice,
 * and how much host time one of them costs relative to an estimator that scores exactly and selects
 * per query (top-k). The drop-in call's dispatch ({@link dev.sparsa.spec.Dispatch#AUTO}) turns
 * {@code scoringMacs × costPerMac} into host time and runs dense attention without planning when
 * planning alone would cost more than dense attention. Patterns that do not implement it are taken
 * as free to plan.
 */
public interface PlanningCost {

    /** Multiply-adds of the scoring over all (batch, query head) slices of a call in {@code ctx}. */
    double scoringMacs(PlanContext ctx);

    /**
     * Host time per scoring multiply-add relative to exact per-query top-k (1): below 1 for
     * estimators whose multiply-adds run in vector hashing passes with little selection work,
     * above for those whose selection dominates. Measured, not derived: planning time over {@link
     * #scoringMacs} in steady state, divided by exact top-k's.
     */
    default double costPerMac() {
        return 1;
    }
}
