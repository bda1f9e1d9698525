package dev.sparsa.pattern;

import dev.sparsa.plan.PlanContext;

/**
 * What planning a data-dependent pattern costs: the multiply-adds its estimator spends scoring Q
 * against K (or pooled and partial products) to choose keys, over every (batch, query head) slice.
 * The drop-in call's dispatch ({@link dev.sparsa.spec.Dispatch#AUTO}) turns it into host time and
 * runs dense attention without planning when planning alone would cost more than dense attention.
 * Patterns that do not implement it are taken as free to plan.
 */
public interface PlanningCost {

    /** Multiply-adds of the scoring over all (batch, query head) slices of a call in {@code ctx}. */
    double scoringMacs(PlanContext ctx);
}
