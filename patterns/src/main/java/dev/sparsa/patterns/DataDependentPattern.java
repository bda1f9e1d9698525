package dev.sparsa.patterns;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/** Base of estimators: {@link #plan(PlanContext)} without Q and K is refused. */
public abstract class DataDependentPattern implements Pattern {
    /** For subclasses: an estimator that plans from Q and K. */
    protected DataDependentPattern() {
    }

    @Override
    public final boolean dataDependent() {
        return true;
    }

    /** @throws UnsupportedOperationException always: this pattern reads Q and K */
    @Override
    public final SparsePlan plan(PlanContext context) {
        throw new UnsupportedOperationException(name() + " is data-dependent: call plan(context, q, k)");
    }

    @Override
    public String toString() {
        return name();
    }
}
