package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.TileGeometry;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The plans of a {@link RaggedBatch}: one {@link SparsePlan} per sequence, each made for that
 * sequence alone (batch 1, its own lengths, positions from 0). Sequences of equal lengths may share
 * one plan object (static patterns are planned once per distinct length), and backends prepare each
 * distinct plan once. A sequence without queries or keys holds {@link SparsePlan#empty}. Immutable.
 *
 * <p>Costs are the sums over the sequences; {@link #density()} is admitted over admissible pairs of
 * all sequences together.
 */
public final class RaggedPlan {
    private final RaggedBatch batch;
    private final List<SparsePlan> plans;

    private RaggedPlan(RaggedBatch batch, List<SparsePlan> plans) {
        this.batch = batch;
        this.plans = List.copyOf(plans);
    }

    /**
     * The plans of {@code batch}, sequence by sequence.
     *
     * @throws IllegalArgumentException if the count differs from the batch's, a plan is not of batch 1
     *     or not of its sequence's lengths, or the plans disagree on heads, dims, causality or geometry
     */
    public static RaggedPlan of(RaggedBatch batch, List<SparsePlan> plans) {
        if (batch == null || plans == null) {
            throw new IllegalArgumentException("batch and plans: must not be null");
        }
        if (plans.size() != batch.sequences()) {
            throw new IllegalArgumentException("plans: " + plans.size() + " plans for " + batch.sequences() + " sequences");
        }
        SparsePlan first = plans.get(0);
        for (int i = 0; i < plans.size(); i++) {
            SparsePlan p = plans.get(i);
            if (p == null) {
                throw new IllegalArgumentException("plans: sequence " + i + " has no plan");
            }
            AttentionShape s = p.shape();
            if (s.batch() != 1 || s.queryLength() != batch.queryLength(i) || s.keyLength() != batch.keyLength(i)) {
                throw new IllegalArgumentException("plans: sequence " + i + " has " + batch.queryLength(i) + " queries and "
                        + batch.keyLength(i) + " keys but its plan is for " + s);
            }
            AttentionShape f = first.shape();
            if (s.qHeads() != f.qHeads() || s.kvHeads() != f.kvHeads() || s.headDim() != f.headDim()
                    || s.valueDim() != f.valueDim()) {
                throw new IllegalArgumentException("plans: sequence " + i + "'s plan is for " + s
                        + " but sequence 0's for " + f + " (heads and dims must agree)");
            }
            if (p.context().causal() != first.context().causal() || !p.geometry().equals(first.geometry())) {
                throw new IllegalArgumentException("plans: sequence " + i + "'s plan (causal=" + p.context().causal()
                        + ", geometry " + p.geometry() + ") differs from sequence 0's (causal=" + first.context().causal()
                        + ", geometry " + first.geometry() + ")");
            }
        }
        return new RaggedPlan(batch, plans);
    }

    /** The batch this plans. */
    public RaggedBatch batch() {
        return batch;
    }

    /** Number of sequences. */
    public int sequences() {
        return plans.size();
    }

    /** Sequence {@code i}'s plan. */
    public SparsePlan plan(int i) {
        if (i < 0 || i >= plans.size()) {
            throw new IllegalArgumentException("sequence: index " + i + " outside [0, " + plans.size() + ")");
        }
        return plans.get(i);
    }

    /** The plans, one per sequence, in order (unmodifiable). */
    public List<SparsePlan> plans() {
        return plans;
    }

    /** The distinct plan objects, in order of first use (what a backend prepares). */
    public List<SparsePlan> distinctPlans() {
        Set<SparsePlan> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<SparsePlan> out = new ArrayList<>();
        for (SparsePlan p : plans) {
            if (seen.add(p)) {
                out.add(p);
            }
        }
        return out;
    }

    /** Heads and dims every sequence shares (the lengths are sequence 0's). */
    public AttentionShape headShape() {
        return plans.get(0).shape();
    }

    /** Whether the sequences were planned causal. */
    public boolean causal() {
        return plans.get(0).context().causal();
    }

    /** The tiling every sequence's plan is written in. */
    public TileGeometry geometry() {
        return plans.get(0).geometry();
    }

    public long pairsAdmitted() {
        long n = 0;
        for (SparsePlan p : plans) {
            n += p.pairsAdmitted();
        }
        return n;
    }

    public long pairsVisited() {
        long n = 0;
        for (SparsePlan p : plans) {
            n += p.pairsVisited();
        }
        return n;
    }

    /** Pairs admissible over all sequences (all, or the causal ones). */
    public long pairsAdmissible() {
        long n = 0;
        for (SparsePlan p : plans) {
            n += p.pairsAdmissible();
        }
        return n;
    }

    /** Admitted over admissible pairs of all sequences; 0 when nothing is admissible. */
    public double density() {
        long a = pairsAdmissible();
        return a == 0 ? 0 : (double) pairsAdmitted() / a;
    }

    /** FLOPs a kernel performs on visited pairs, over all sequences. */
    public double flopsVisited() {
        double f = 0;
        for (SparsePlan p : plans) {
            f += p.flopsVisited();
        }
        return f;
    }

    /** Bytes held by the distinct plans. */
    public long sizeBytes() {
        long b = 0;
        for (SparsePlan p : distinctPlans()) {
            b += p.sizeBytes();
        }
        return b;
    }

    /**
     * Refuses options that contradict any sequence's plan (causal flag, an explicit query offset,
     * an explicit geometry).
     *
     * @throws IllegalArgumentException naming the sequence, the option and both values
     */
    public void requireConsistent(Options options) {
        for (int i = 0; i < plans.size(); i++) {
            try {
                plans.get(i).context().requireConsistent(options);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("sequence " + i + ": " + e.getMessage(), e);
            }
        }
    }

    /** A short name: the first non-empty sequence's plan's description and the batch. */
    public String description() {
        for (SparsePlan p : plans) {
            if (!p.description().equals("empty")) {
                return p.description() + " per sequence of " + batch;
            }
        }
        return "empty per sequence of " + batch;
    }

    @Override
    public String toString() {
        return "RaggedPlan[" + description() + ", " + distinctPlans().size() + " distinct plan(s), density "
                + String.format("%.4f", density()) + ", visited " + pairsVisited() + "]";
    }
}
