package dev.sparsa.audit;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.compose.PatternSpec;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs every candidate on one layer's Q, K, V (all heads in one call, as a model would) and the dense
 * attention they are measured against, and chooses per head the cheapest candidate meeting the
 * recall target: the offline per-head search of MInference (Jiang et al., 2024), with "cheapest"
 * meaning the fewest pairs computed. Recall, error and density are each head's own; times are the
 * layer's call divided by its heads.
 */
final class HeadAuditor {
    /** Timed kernel runs per candidate (the median is reported) after one warm-up run. */
    static final int REPS = 3;

    private final Options options;
    private final double target;

    HeadAuditor(Options options, double target) {
        this.options = options;
        this.target = target;
    }

    /** What one head's audit found, and the chosen candidate's plan of that head (for pictures). */
    record Audit(HeadResult result, SparsePlan chosenPlan) {
    }

    /** One run of a pattern on the layer. */
    private record Run(SparsePlan plan, AttentionResult out, double planMillis, double kernelMillis) {
    }

    List<Audit> audit(int layer, Tensor q, Tensor k, Tensor v, List<PatternSpec> specs, PatternSpec probe) {
        int heads = q.heads();
        Run dense = run(PatternSpec.of("dense").pattern(), q, k, v);
        List<List<CandidateResult>> perHead = new ArrayList<>();
        for (int h = 0; h < heads; h++) {
            perHead.add(new ArrayList<>());
        }
        List<SparsePlan> plans = new ArrayList<>();
        for (PatternSpec s : specs) {
            Run r = run(s.pattern(), q, k, v);
            for (int h = 0; h < heads; h++) {
                perHead.get(h).add(measure(s, r, dense, q, k, h));
            }
            plans.add(r.plan);
        }
        Run probeRun = run(probe.pattern(), q, k, v);
        List<Audit> out = new ArrayList<>();
        for (int h = 0; h < heads; h++) {
            List<CandidateResult> results = perHead.get(h);
            CandidateResult probeResult = measure(probe, probeRun, dense, q, k, h);
            int chosen = choose(results, target);
            out.add(new Audit(new HeadResult(layer, h, results, chosen, probeResult, probeResult.recall() < target),
                    headPlan(plans.get(chosen), h)));
        }
        return out;
    }

    /** Head {@code h}'s layout of a plan, as a one-head plan. */
    static SparsePlan headPlan(SparsePlan plan, int h) {
        PlanContext c = plan.context();
        AttentionShape s = c.shape();
        AttentionShape one = new AttentionShape(1, 1, 1, s.queryLength(), s.keyLength(),
                s.headDim(), s.valueDim());
        return SparsePlan.uniform(new PlanContext(one, c.geometry(), c.causal(), c.queryOffset()),
                plan.layout(0, h), plan.description() + ", head " + h);
    }

    /**
     * The cheapest candidate (fewest pairs visited, then least plan and kernel time) whose recall
     * meets the target; the most faithful one (highest recall) when none does.
     */
    static int choose(List<CandidateResult> results, double target) {
        int best = -1;
        for (int i = 0; i < results.size(); i++) {
            CandidateResult c = results.get(i);
            if (c.recall() < target) {
                continue;
            }
            if (best < 0 || c.pairsVisited() < results.get(best).pairsVisited()
                    || (c.pairsVisited() == results.get(best).pairsVisited()
                    && c.planMillis() + c.kernelMillis() < results.get(best).planMillis() + results.get(best).kernelMillis())) {
                best = i;
            }
        }
        if (best >= 0) {
            return best;
        }
        for (int i = 0; i < results.size(); i++) {
            if (best < 0 || results.get(i).recall() > results.get(best).recall()) {
                best = i;
            }
        }
        return best;
    }

    private Run run(Pattern pattern, Tensor q, Tensor k, Tensor v) {
        long t0 = System.nanoTime();
        SparsePlan plan = Attention.plan(q, k, v, pattern, options);
        double planMillis = (System.nanoTime() - t0) / 1e6;
        double[] times = new double[REPS];
        AttentionResult out;
        try (PreparedPlan prepared = Attention.prepare(plan)) {
            out = Attention.forwardWithLse(prepared, q, k, v, options.run());
            for (int i = 0; i < REPS; i++) {
                long t = System.nanoTime();
                out = Attention.forwardWithLse(prepared, q, k, v, options.run());
                times[i] = (System.nanoTime() - t) / 1e6;
            }
        }
        Arrays.sort(times);
        return new Run(plan, out, planMillis, times[REPS / 2]);
    }

    private CandidateResult measure(PatternSpec spec, Run r, Run dense, Tensor q, Tensor k, int h) {
        int n = r.out.lse().seqLen();
        int heads = q.heads();
        HeadLayout layout = r.plan.layout(0, h);
        Tensor qh = Auditor.head(q, h);
        Tensor kh = Auditor.head(k, r.plan.shape().kvHeadOf(h));
        double[] recall = weighted(layout) ? recallByPairs(layout, qh, kh, dense.out.lse(), h) : null;
        double sum = 0;
        double min = Double.POSITIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            double rec;
            if (recall != null) {
                rec = recall[i];
            } else {
                double ls = r.out.lse().get(0, h, i, 0);
                double ld = dense.out.lse().get(0, h, i, 0);
                rec = ls == Double.NEGATIVE_INFINITY ? 0 : Math.exp(ls - ld);
            }
            sum += rec;
            min = Math.min(min, rec);
        }
        double density = (double) layout.pairsAdmitted() / r.plan.context().admissiblePairsPerSlice();
        return new CandidateResult(spec.toString(), spec.family(), density, layout.pairsVisited(), sum / n, min,
                relativeError(Auditor.head(r.out.output(), h), Auditor.head(dense.out.output(), h)), r.planMillis / heads,
                r.kernelMillis / heads, dense.kernelMillis / heads);
    }

    private static boolean weighted(HeadLayout l) {
        if (l.hasGatherLogWeights()) {
            return true;
        }
        for (float w : l.unconditionalLogWeights()) {
            if (w != 0f) {
                return true;
            }
        }
        return false;
    }

    /**
     * Each row's recall from its admitted pairs: the dense softmax mass {@code Σ exp(s − lse_dense)}
     * over the keys the layout admits, without the layout's log-weights (which make the kernel's LSE
     * an estimate of the dense one, not the mass kept).
     */
    private double[] recallByPairs(HeadLayout layout, Tensor q, Tensor k, Tensor denseLse, int h) {
        int n = q.seqLen();
        int d = q.dim();
        double scale = options.run().scaleFor(d);
        float[] keys = new float[k.seqLen() * d];
        for (int s = 0; s < k.seqLen(); s++) {
            k.readRow(0, 0, s, keys, s * d);
        }
        double[] recall = new double[n];
        float[] row = new float[d];
        for (int t = 0; t < layout.tileCount(); t++) {
            for (int i = 0; i < layout.rowCount(t); i++) {
                int r = layout.row(t, i);
                q.readRow(0, 0, r, row, 0);
                double lse = denseLse.get(0, h, r, 0);
                double[] sum = {0};
                layout.forEachAdmittedKey(t, r, (key, logWeight) -> {
                    double dot = 0;
                    for (int j = 0; j < d; j++) {
                        dot += row[j] * keys[key * d + j];
                    }
                    sum[0] += Math.exp(scale * dot - lse);
                });
                recall[r] += sum[0];
            }
        }
        return recall;
    }

    /** ‖a − b‖ / ‖b‖ over a whole {@code [1, 1, n, d]} tensor. */
    static double relativeError(Tensor a, Tensor b) {
        double err = 0;
        double ref = 0;
        int d = b.dim();
        float[] ra = new float[d];
        float[] rb = new float[d];
        for (int s = 0; s < b.seqLen(); s++) {
            a.readRow(0, 0, s, ra, 0);
            b.readRow(0, 0, s, rb, 0);
            for (int i = 0; i < d; i++) {
                double x = (double) ra[i] - rb[i];
                err += x * x;
                ref += (double) rb[i] * rb[i];
            }
        }
        return ref == 0 ? (err == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(err / ref);
    }
}
