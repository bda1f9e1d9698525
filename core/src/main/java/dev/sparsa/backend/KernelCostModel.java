package dev.sparsa.backend;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.PlanFeatures;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;

/**
 * A backend's estimate of its kernel's running time on a plan, for the drop-in call's dispatch
 * ({@link dev.sparsa.spec.Dispatch#AUTO}): it compares the estimates of the pattern's plan, its
 * block-expanded form and dense attention on the same backend, so what matters is that the model
 * ranks plans right (one-row tiles, element tests, gathered keys, per-tile overhead), more than its
 * absolute scale. Supplied by {@link AttentionBackend#costModel()}. Implementations are immutable
 * and cheap: O(tiles) per plan, never a kernel run.
 */
public interface KernelCostModel {

    /** Where the model's constants come from (machine, kernel, command), in one line. */
    String description();

    /** Estimated kernel milliseconds of one run of {@code plan} with inputs of {@code dtype}. */
    double millis(SparsePlan plan, DType dtype);

    /** Estimated kernel milliseconds of dense attention (causal when the context is) in {@code context}. */
    double denseMillis(PlanContext context, DType dtype);

    /**
     * The model of a backend that supplies none: time proportional to the visited pairs (1 ns per
     * pair). It prefers a substitute only when it visits fewer pairs, which a superset never does,
     * so under it AUTO runs the pattern's plan.
     */
    static KernelCostModel visitedPairs() {
        return new KernelCostModel() {
            @Override
            public String description() {
                return "visited pairs (no model supplied by the backend)";
            }

            @Override
            public double millis(SparsePlan plan, DType dtype) {
                return plan.pairsVisited() * 1e-6;
            }

            @Override
            public double denseMillis(PlanContext context, DType dtype) {
                PlanFeatures f = PlanFeatures.dense(context, 1, false);
                return f.paddedRowKeys() * 1e-6;
            }
        };
    }
}
