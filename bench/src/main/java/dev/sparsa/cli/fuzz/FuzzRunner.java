package dev.sparsa.cli.fuzz;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.pattern.Pattern;
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
import java.util.SplittableRandom;
import java.util.function.IntFunction;

/**
 * Runs one {@link FuzzCase} and checks everything that must hold:
 * <ul>
 *   <li>planning either succeeds or refuses the parameters with an {@link IllegalArgumentException}
 *       that says why (nothing else may escape: no index error, no overflow, no stack overflow);
 *   <li>the plan's token set: every admitted key lies in {@code [0, keyLength)}, is admitted once, is
 *       causal when the call is, the counts add up to {@code pairsAdmitted}, and, where the pattern's
 *       definition is written down ({@link PatternSpecs}), equals it pair by pair;
 *   <li>the kernel against the fp64 oracle of the plan: the tolerance of the input type on every
 *       slice, the LSE within 1e-4 (f32) or 1e-2, empty rows exactly 0 and −∞, no NaN; with a planted
 *       NaN or infinity, the rows the oracle makes NaN are NaN and the others still meet the tolerance;
 *   <li>the same bits with one worker as with several (backends that take a thread count).
 * </ul>
 */
public final class FuzzRunner {
    /** What a case came to. */
    public enum Verdict { PASSED, REFUSED, SKIPPED, FAILED }

    /** A verdict and, for FAILED, REFUSED or SKIPPED, why. */
    public record Outcome(Verdict verdict, String detail) {
        static Outcome passed() {
            return new Outcome(Verdict.PASSED, "");
        }

        /**
         * A refusal: documented when its message names the argument ({@code "name: why"}), else a
         * failure.
         */
        static Outcome refused(IllegalArgumentException refused) {
            String m = refused.getMessage();
            if (m == null || m.isBlank() || !m.contains(":")) {
                return new Outcome(Verdict.FAILED, "refused without saying which argument: " + refused);
            }
            return new Outcome(Verdict.REFUSED, m);
        }

        /** A case that threw where nothing may escape: the throwable and where it was thrown. */
        static Outcome threw(Throwable t) {
            StackTraceElement[] st = t.getStackTrace();
            return new Outcome(Verdict.FAILED, "threw " + t + (st.length == 0 ? "" : " at " + st[0]));
        }
    }

    private final IntFunction<AttentionBackend> backendWithThreads;
    private final boolean threadsMatter;

    /**
     * @param backendWithThreads the backend under test with the given number of workers
     * @param threadsMatter      whether to compare one worker's bits with several's
     */
    public FuzzRunner(IntFunction<AttentionBackend> backendWithThreads, boolean threadsMatter) {
        this.backendWithThreads = backendWithThreads;
        this.threadsMatter = threadsMatter;
    }

    public Outcome run(FuzzCase c) {
        try {
            return check(c);
        } catch (Throwable t) {
            return Outcome.threw(t);
        }
    }

    private Outcome check(FuzzCase c) {
        AttentionShape shape = c.shape();
        Options options = c.options();
        PlanContext ctx = PlanContext.of(shape, options);
        Tensor[] qkv = inputs(c, shape);
        PatternSpecs.Built built;
        SparsePlan plan;
        try {
            built = PatternSpecs.build(c.pattern(), c.paramSeed(), ctx);
            Pattern p = built.pattern();
            plan = p.dataDependent() ? p.plan(ctx, qkv[0], qkv[1]) : p.plan(ctx);
        } catch (IllegalArgumentException refused) {
            return Outcome.refused(refused);
        }
        String tokens = checkTokens(plan, ctx, built.definition());
        if (tokens != null) {
            return new Outcome(Verdict.FAILED, tokens);
        }
        AttentionBackend backend = backendWithThreads.apply(c.threads());
        String why = backend.refusal(shape, c.queryType(), c.dtype(), plan.geometry());
        if (why != null) {
            return new Outcome(Verdict.SKIPPED, why);
        }
        Tensor[] run = forward(backend, plan, qkv, c, shape);
        ReferenceResult ref = ReferenceAttention.plan(plan, qkv[0], qkv[1], qkv[2], options);
        String numbers = c.nonFinite() == 0 ? FuzzChecks.numbers(run[0], run[1], ref, c.dtype())
                : FuzzChecks.nonFinite(run[0], ref, c.dtype(), c.nonFinite() == 4);
        if (numbers != null) {
            return new Outcome(Verdict.FAILED, numbers);
        }
        if (threadsMatter && c.threads() > 1 && c.nonFinite() == 0) {
            Tensor[] one = forward(backendWithThreads.apply(1), plan, qkv, c, shape);
            if (!FuzzChecks.sameBits(one[0], run[0]) || (run[1] != null && !FuzzChecks.sameBits(one[1], run[1]))) {
                return new Outcome(Verdict.FAILED, "one worker and " + c.threads() + " give different bits");
            }
        }
        return Outcome.passed();
    }

    /** Q, K, V rounded to the case's dtype, with the planted non-finite value. */
    private static Tensor[] inputs(FuzzCase c, AttentionShape s) {
        SplittableRandom rnd = new SplittableRandom(c.dataSeed());
        Tensor q = FuzzTensors.random(rnd, c.queryType(), c.layout(), s.batch(), s.qHeads(), s.queryLength(), s.headDim(), 2);
        Tensor k = random(rnd, c, s.batch(), s.kvHeads(), s.keyLength(), s.headDim(), 2);
        Tensor v = random(rnd, c, s.batch(), s.kvHeads(), s.keyLength(), s.valueDim(), 1);
        Tensor target = switch (c.nonFinite()) {
            case 1 -> q;
            case 2, 3 -> k;
            case 4 -> v;
            default -> null;
        };
        if (target != null && target.seqLen() > 0) {
            float value = switch (c.nonFinite()) {
                case 2 -> Float.POSITIVE_INFINITY;
                case 3 -> Float.NEGATIVE_INFINITY;
                default -> Float.NaN;
            };
            target.set(rnd.nextInt(target.batch()), rnd.nextInt(target.heads()), rnd.nextInt(target.seqLen()),
                    rnd.nextInt(target.dim()), value);
        }
        return new Tensor[] {q, k, v};
    }

    private static Tensor random(SplittableRandom rnd, FuzzCase c, int b, int h, int n, int d, double amplitude) {
        return FuzzTensors.random(rnd, c.dtype(), c.layout(), b, h, n, d, amplitude);
    }

    /** Runs the backend into NaN-poisoned outputs (so an unwritten row cannot pass). */
    private static Tensor[] forward(AttentionBackend backend, SparsePlan plan, Tensor[] qkv, FuzzCase c, AttentionShape s) {
        DType outType = c.options().outputTypeFor(c.queryType());
        Tensor out = Tensor.allocate(outType, c.layout(), s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
        Tensor lse = c.withLse() ? Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1) : null;
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    out.fillRow(b, h, r, Float.NaN);
                    if (lse != null) {
                        lse.set(b, h, r, 0, Float.NaN);
                    }
                }
            }
        }
        backend.forward(plan, qkv[0], qkv[1], qkv[2], out, lse, c.options().run());
        return new Tensor[] {out, lse};
    }

    /** Token-set invariants, and the definition where there is one; null when all hold. */
    private static String checkTokens(SparsePlan plan, PlanContext ctx, PatternSpecs.Definition def) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        long total = 0;
        for (int b = 0; b < ctx.shape().batch(); b++) {
            for (int h = 0; h < ctx.shape().qHeads(); h++) {
                HeadLayout l = plan.layout(b, h);
                java.util.BitSet[] rows = new java.util.BitSet[nq];
                for (int r = 0; r < nq; r++) {
                    rows[r] = new java.util.BitSet(nk);
                }
                String[] bad = new String[1];
                for (int t = 0; t < l.tileCount(); t++) {
                    for (int i = 0; i < l.rowCount(t); i++) {
                        int r = l.row(t, i);
                        l.forEachAdmittedKey(t, r, (k, w) -> {
                            if (bad[0] != null) {
                                return;
                            }
                            if (k < 0 || k >= nk) {
                                bad[0] = "row " + r + " admits key " + k + " outside [0, " + nk + ")";
                            } else if (rows[r].get(k)) {
                                bad[0] = "row " + r + " admits key " + k + " twice";
                            } else if (ctx.causal() && k > (long) r + ctx.queryOffset()) {
                                bad[0] = "row " + r + " (position " + ((long) r + ctx.queryOffset()) + ") admits the later key " + k;
                            } else {
                                rows[r].set(k);
                            }
                        });
                    }
                }
                if (bad[0] != null) {
                    return "slice (" + b + ", " + h + "): " + bad[0];
                }
                for (int r = 0; r < nq; r++) {
                    total += rows[r].cardinality();
                    if (def == null) {
                        continue;
                    }
                    for (int k = 0; k < nk; k++) {
                        boolean want = def.admits(b, h, r, k);
                        if (want != rows[r].get(k)) {
                            return "slice (" + b + ", " + h + ") row " + r + " key " + k + ": the plan " + (rows[r].get(k)
                                    ? "admits" : "omits") + " it, the definition " + (want ? "admits" : "omits") + " it";
                        }
                    }
                }
            }
        }
        if (total != plan.pairsAdmitted()) {
            return "pairsAdmitted says " + plan.pairsAdmitted() + " but the tiles admit " + total;
        }
        return null;
    }
}
