package dev.sparsa.attention;

import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Dispatch;

/**
 * What a call ran and why: the mode asked for, the plan chosen ({@link Ran}), the plan itself, the
 * cost model's estimates that decided it (NaN where not computed) and a one-line reason. Returned in
 * {@link AttentionResult#dispatch()}, one per sequence of a ragged batch.
 *
 * @param mode           the mode of the call ({@link Dispatch#SPARSE} for calls that pass a plan)
 * @param ran            which plan ran
 * @param plan           the plan that ran (the context's empty plan for {@link Ran#DEVICE_ESTIMATED})
 * @param sparseMillis   the model's kernel estimate of the pattern's plan
 * @param expandedMillis the model's kernel estimate of its block-expanded form
 * @param denseMillis    the model's kernel estimate of dense attention
 * @param planningMillis the estimated host time of planning a data-dependent pattern (0 for static
 *                       patterns, whose plans are cached)
 * @param model          the cost model's description, or empty when none was consulted
 * @param reason         why, in words
 */
public record DispatchDecision(Dispatch mode, Ran ran, SparsePlan plan, double sparseMillis, double expandedMillis,
                               double denseMillis, double planningMillis, String model, String reason) {

    /** Which plan a call ran. */
    public enum Ran {
        /** The pattern's plan, exactly. */
        SPARSE,
        /** The block-expanded form of the pattern's plan (a superset of its pairs). */
        BLOCK_EXPANDED,
        /** Dense attention (causal when the call is). */
        DENSE,
        /**
         * The pattern's plan, exactly, its selection estimated on the device during the call ({@link
         * dev.sparsa.backend.EstimatedPlan}): the plan never reaches the host, so the decision's plan
         * is the context's empty plan and the estimates are NaN.
         */
        DEVICE_ESTIMATED;

        @Override
        public String toString() {
            return name().toLowerCase().replace('_', '-');
        }
    }

    public DispatchDecision {
        if (mode == null || ran == null || plan == null || model == null || reason == null) {
            throw new IllegalArgumentException("mode, ran, plan, model and reason: must not be null");
        }
    }

    /** The decision of a call that passed its own plan: it runs that plan. */
    public static DispatchDecision given(SparsePlan plan) {
        return new DispatchDecision(Dispatch.SPARSE, Ran.SPARSE, plan, Double.NaN, Double.NaN, Double.NaN, 0, "",
                "the caller's plan");
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("dispatch ").append(mode).append(" -> ").append(ran).append(": ").append(reason);
        if (!Double.isNaN(sparseMillis) || !Double.isNaN(denseMillis)) {
            b.append(String.format(" (estimates: sparse %.3g ms, block-expanded %.3g ms, dense %.3g ms, planning %.3g ms; %s)",
                    sparseMillis, expandedMillis, denseMillis, planningMillis, model));
        }
        return b.toString();
    }
}
