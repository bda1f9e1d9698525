package dev.sparsa.cpu;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.function.IntFunction;

/** Shared helpers of the CPU kernel tests: run a backend and compare with the fp64 oracle. */
final class Fixtures {
    private Fixtures() {
    }

    /** A backend's output and LSE for one call. */
    record Run(Tensor out, Tensor lse) {
    }

    static Run run(CpuBackend backend, SparsePlan plan, Problems.Qkv p, Options options, DType outType, Layout outLayout) {
        AttentionShape s = p.shape();
        Tensor out = Tensor.allocate(outType, outLayout, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
        return run(backend, plan, p, options, out, lse);
    }

    /** Runs the call into {@code out} and {@code lse}, both first poisoned with NaN. */
    static Run run(CpuBackend backend, SparsePlan plan, Problems.Qkv p, Options options, Tensor out, Tensor lse) {
        AttentionShape s = p.shape();
        // poison the outputs so that a row the kernel forgets cannot pass as zero
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    out.fillRow(b, h, r, Float.NaN);
                    lse.set(b, h, r, 0, Float.NaN);
                }
            }
        }
        backend.forward(plan, p.q(), p.k(), p.v(), out, lse, options);
        return new Run(out, lse);
    }

    /**
     * Runs each KV head's stacked query heads as one work item over all of its layout's tiles (the
     * backend cuts a call into runs of a few tiles), into outputs first filled with {@code outFill}
     * and LSEs with {@code lseFill} (NaN to catch a forgotten row; 0 and −∞ where the plan leaves rows
     * without a tile, which the backend clears to those).
     */
    static Run oneWorkItemPerKvHead(TileMath math, SparsePlan plan, Problems.Qkv p, Options options, float outFill,
                                    float lseFill) {
        AttentionShape s = p.shape();
        Tensor out = Tensor.allocate(options.outputTypeFor(p.q().dtype()), Layout.BHSD, s.batch(), s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    out.fillRow(b, h, r, outFill);
                    lse.set(b, h, r, 0, lseFill);
                }
            }
        }
        TileRunner runner = new TileRunner(math, plan, s, p.q(), p.k(), p.v(), out, lse, options.run());
        for (int b = 0; b < s.batch(); b++) {
            for (int g = 0; g < s.kvHeads(); g++) {
                int h0 = g * s.groupSize();
                int layout = plan.layoutIndex(b, h0);
                runner.run(new WorkItem(b, h0, s.groupSize(), layout, 0, plan.layouts().get(layout).tileCount(), 1));
            }
        }
        return new Run(out, lse);
    }

    static Run run(CpuBackend backend, SparsePlan plan, Problems.Qkv p, Options options) {
        return run(backend, plan, p, options, options.outputTypeFor(p.q().dtype()), Layout.BHSD);
    }

    /**
     * A plan of one layout per KV head, {@code layoutOf.apply(g)} for KV head {@code g} (called in
     * order), shared by the query heads of its GQA group.
     */
    static SparsePlan planPerKvHead(PlanContext ctx, String description, IntFunction<HeadLayout> layoutOf) {
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe(description);
        AttentionShape s = ctx.shape();
        for (int g = 0; g < s.kvHeads(); g++) {
            HeadLayout layout = layoutOf.apply(g);
            for (int h = g * s.groupSize(); h < (g + 1) * s.groupSize(); h++) {
                plan.head(h, layout);
            }
        }
        return plan.build();
    }

    /** The oracle of the plan's semantics. */
    static ReferenceResult oracle(SparsePlan plan, Problems.Qkv p, Options options) {
        return ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), options);
    }

    /** True when two tensors hold bitwise the same values. */
    static boolean bitwiseEqual(Tensor a, Tensor b) {
        float[] x = a.toFloatArray();
        float[] y = b.toFloatArray();
        if (x.length != y.length) {
            return false;
        }
        for (int i = 0; i < x.length; i++) {
            if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                return false;
            }
        }
        return true;
    }

    /** The largest relative Frobenius error per slice between two kernel outputs. */
    static double maxRelativeDifference(Tensor actual, Tensor expected) {
        int[] s = expected.shape();
        float[] a = new float[s[3]];
        float[] e = new float[s[3]];
        double worst = 0;
        for (int b = 0; b < s[0]; b++) {
            for (int h = 0; h < s[1]; h++) {
                double num = 0;
                double den = 0;
                for (int r = 0; r < s[2]; r++) {
                    actual.readRow(b, h, r, a, 0);
                    expected.readRow(b, h, r, e, 0);
                    for (int d = 0; d < s[3]; d++) {
                        num += (double) (a[d] - e[d]) * (a[d] - e[d]);
                        den += (double) e[d] * e[d];
                    }
                }
                double err = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
                if (Double.isNaN(err)) {
                    return Double.NaN;
                }
                worst = Math.max(worst, err);
            }
        }
        return worst;
    }

    /** True when any output or LSE value is NaN. */
    static boolean anyNaN(Run r) {
        for (float x : r.out().toFloatArray()) {
            if (Float.isNaN(x)) {
                return true;
            }
        }
        for (float x : r.lse().toFloatArray()) {
            if (Float.isNaN(x)) {
                return true;
            }
        }
        return false;
    }
}
