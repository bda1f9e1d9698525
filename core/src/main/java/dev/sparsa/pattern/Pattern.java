package dev.sparsa.pattern;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * A sparse-attention pattern: something that compiles to a {@link SparsePlan}. Static patterns
 * (windows, strides, fixed layouts) depend only on the {@link PlanContext}; estimators look at Q and
 * K to choose keys and say so through {@link #dataDependent()}.
 *
 * <p>Implementations are immutable and thread-safe. Planning never materialises an N×N matrix.
 * The drop-in call ({@code Attention.forward}) caches the plans of static patterns keyed by the
 * pattern's {@code equals}: a pattern with value semantics (a record) is planned once however often
 * it is rebuilt; data-dependent patterns are planned on every call.
 */
public interface Pattern {

    /** A short name for tables and logs, e.g. {@code "window(1024)+sinks(64)"}. */
    String name();

    /** True when {@link #plan(PlanContext, Tensor, Tensor)} needs Q and K. */
    default boolean dataDependent() {
        return false;
    }

    /**
     * Builds the plan of a static pattern.
     *
     * @throws UnsupportedOperationException if the pattern needs Q and K
     * @throws IllegalArgumentException if the pattern's parameters do not fit the context
     */
    SparsePlan plan(PlanContext context);

    /**
     * Builds the plan for these inputs. Static patterns ignore Q and K.
     *
     * @param q {@code [batch, qHeads, queryLength, headDim]}
     * @param k {@code [batch, kvHeads, keyLength, headDim]}
     */
    default SparsePlan plan(PlanContext context, Tensor q, Tensor k) {
        return plan(context);
    }
}
