package dev.sparsa.audit;

import dev.sparsa.patterns.compose.PatternSpec;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Audits the attention of one or more layers head by head: every candidate pattern on every head's
 * own Q, K and V, against dense attention on the same inputs.
 */
public final class Auditor {
    private final Options options;
    private final double target;
    private final PrintStream progress;

    /**
     * @param options causality and tiling of the attention audited
     * @param recallTarget the recall a chosen pattern must reach, in (0, 1]
     * @param progress where progress lines go (stderr on the command line)
     * @throws IllegalArgumentException for a target outside (0, 1]
     */
    public Auditor(Options options, double recallTarget, PrintStream progress) {
        if (!(recallTarget > 0 && recallTarget <= 1)) {
            throw new IllegalArgumentException("recall: the target must be in (0, 1], got " + recallTarget);
        }
        this.options = Objects.requireNonNull(options, "options");
        this.target = recallTarget;
        this.progress = Objects.requireNonNull(progress, "progress");
    }

    /** One layer's Q, K, V: {@code [1, H, n, d]} and {@code [1, Hkv, n, d]} host tensors, any strides. */
    public record LayerInput(int layer, Tensor q, Tensor k, Tensor v) {
    }

    /** Heads' results, in layer then head order, and the chosen plans beside them (same order). */
    public record Outcome(List<HeadResult> heads, List<SparsePlan> chosenPlans) {
    }

    /**
     * Audits every head of every layer.
     *
     * @throws IllegalArgumentException if a layer's tensors do not form a valid attention shape or
     *     have a batch other than 1
     */
    public Outcome audit(List<LayerInput> layers, List<PatternSpec> candidates) {
        HeadAuditor auditor = new HeadAuditor(options, target);
        List<HeadResult> heads = new ArrayList<>();
        List<SparsePlan> plans = new ArrayList<>();
        for (LayerInput in : layers) {
            AttentionShape shape = AttentionShape.of(in.q(), in.k(), in.v());
            if (shape.batch() != 1) {
                throw new IllegalArgumentException("q: the audit takes one sequence (batch 1), got batch " + shape.batch());
            }
            PatternSpec probe = CandidateSets.streamingProbe(shape.keyLength(), options.causal());
            long t0 = System.nanoTime();
            for (HeadAuditor.Audit a : auditor.audit(in.layer(), in.q(), in.k(), in.v(), candidates, probe)) {
                heads.add(a.result());
                plans.add(a.chosenPlan());
            }
            progress.printf("sparsa audit: layer %d, %d heads x %d candidates in %.1f s%n", in.layer(), shape.qHeads(),
                    candidates.size(), (System.nanoTime() - t0) / 1e9);
        }
        return new Outcome(heads, plans);
    }

    /** Head {@code h} of a batch-1 tensor as a {@code [1, 1, n, d]} view (no copy). */
    static Tensor head(Tensor t, int h) {
        return Tensor.wrap(t.segment(), t.dtype(), new int[] {1, 1, t.seqLen(), t.dim()}, t.strides(),
                t.offset() + h * t.stride(1));
    }
}
