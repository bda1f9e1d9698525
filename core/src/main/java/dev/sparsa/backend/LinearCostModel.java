package dev.sparsa.backend;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.PlanFeatures;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import java.util.EnumMap;
import java.util.Map;

/**
 * A kernel cost model linear in a plan's {@link PlanFeatures}: each feature costs a fixed number of
 * nanoseconds per unit (per dtype), the items' total is spread over {@code min(parallelism, items)}
 * workers, and every call pays a fixed overhead. The tile kernels of both backends fit this shape;
 * each backend supplies its own {@link Coefficients} (fitted to timed runs, or derived from
 * measured throughput) and says where they come from.
 */
public final class LinearCostModel implements KernelCostModel {

    /**
     * Nanoseconds per unit of each feature; dims-weighted features are per (row, key or key) and per
     * element of {@code headDim + valueDim}. Throws {@link IllegalArgumentException} if a coefficient
     * is negative or not finite.
     *
     * @param perCall               fixed cost of a call (scheduling, setup)
     * @param perItem               per work item (reading the tile's Q, writing its output rows)
     * @param perRowDim             per stacked row and element of {@code headDim + valueDim}
     * @param perPaddedRowKeyDim    per padded (row, key) and element of {@code headDim + valueDim}:
     *                              the two matrix products
     * @param perPaddedRowKey       per padded (row, key): the online softmax
     * @param perCausalMaskPair     per element test under a causal-only predicate
     * @param perPredicateMaskPair  per element test under any other predicate
     * @param perBlockKeyDim        per key loaded in bulk and element of {@code headDim + valueDim}
     * @param perListedKeyDim       per key loaded one by one and element of {@code headDim + valueDim}
     * @param perChunk              per key chunk of an item
     */
    public record Coefficients(double perCall, double perItem, double perRowDim, double perPaddedRowKeyDim,
                               double perPaddedRowKey, double perCausalMaskPair, double perPredicateMaskPair,
                               double perBlockKeyDim, double perListedKeyDim, double perChunk) {
        public Coefficients {
            double[] all = {perCall, perItem, perRowDim, perPaddedRowKeyDim, perPaddedRowKey, perCausalMaskPair,
                    perPredicateMaskPair, perBlockKeyDim, perListedKeyDim, perChunk};
            for (double c : all) {
                if (!(c >= 0) || Double.isInfinite(c)) {
                    throw new IllegalArgumentException("coefficients: each must be finite and >= 0, got " + c);
                }
            }
        }

        /** Estimated nanoseconds of the work described by {@code f} on one worker, without the call's overhead. */
        public double workNanos(PlanFeatures f) {
            double dims = f.headDim() + f.valueDim();
            return perItem * f.items() + perRowDim * f.rows() * dims + perPaddedRowKeyDim * f.paddedRowKeys() * dims
                    + perPaddedRowKey * f.paddedRowKeys() + perCausalMaskPair * f.causalMaskPairs()
                    + perPredicateMaskPair * f.predicateMaskPairs() + perBlockKeyDim * f.blockKeys() * dims
                    + perListedKeyDim * f.listedKeys() * dims + perChunk * f.chunks();
        }
    }

    private final String description;
    private final int rowQuantum;
    private final boolean stackGroups;
    private final int parallelism;
    private final Map<DType, Coefficients> coefficients;

    /**
     * @param description  where the coefficients come from
     * @param rowQuantum   the kernel pads a tile's (stacked) rows to a multiple of this
     * @param stackGroups  whether the kernel stacks a GQA group's heads that share a layout
     * @param parallelism  how many work items run at once
     * @param coefficients per input dtype; every dtype must have one
     * @throws IllegalArgumentException if an argument is missing or out of range
     */
    public LinearCostModel(String description, int rowQuantum, boolean stackGroups, int parallelism,
                           Map<DType, Coefficients> coefficients) {
        if (description == null || coefficients == null) {
            throw new IllegalArgumentException("description and coefficients: must not be null");
        }
        if (rowQuantum < 1 || parallelism < 1) {
            throw new IllegalArgumentException("rowQuantum and parallelism: must be >= 1, got " + rowQuantum + " and "
                    + parallelism);
        }
        for (DType t : DType.values()) {
            if (coefficients.get(t) == null) {
                throw new IllegalArgumentException("coefficients: none for " + t);
            }
        }
        this.description = description;
        this.rowQuantum = rowQuantum;
        this.stackGroups = stackGroups;
        this.parallelism = parallelism;
        this.coefficients = new EnumMap<>(coefficients);
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public double millis(SparsePlan plan, DType dtype) {
        return millis(PlanFeatures.of(plan, rowQuantum, stackGroups), dtype);
    }

    @Override
    public double denseMillis(PlanContext context, DType dtype) {
        return millis(PlanFeatures.dense(context, rowQuantum, stackGroups), dtype);
    }

    /** Estimated milliseconds of a call with these features. */
    public double millis(PlanFeatures f, DType dtype) {
        Coefficients c = coefficients.get(dtype);
        if (c == null) {
            throw new IllegalArgumentException("dtype: must not be null");
        }
        long workers = Math.max(1, Math.min(parallelism, f.items()));
        return (c.perCall() + c.workNanos(f) / workers) * 1e-6;
    }

    /** The row quantum the features are counted with. */
    public int rowQuantum() {
        return rowQuantum;
    }

    /** Whether GQA groups are counted as stacked. */
    public boolean stackGroups() {
        return stackGroups;
    }

    /** Work items that run at once. */
    public int parallelism() {
        return parallelism;
    }

    /** The coefficients for a dtype. */
    public Coefficients coefficients(DType dtype) {
        return coefficients.get(dtype);
    }

    @Override
    public String toString() {
        return "LinearCostModel[" + description + ", quantum " + rowQuantum + ", parallelism " + parallelism + "]";
    }
}
