package dev.sparsa.patterns.adaptive;

import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.patterns.verticalslash.VerticalSlash;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * MInference's vertical-slash estimate with budgets chosen per head by cumulative mass, as
 * FlexPrefill sizes its vertical and slash sets (Lai et al., "FlexPrefill"; reference: {@code
 * get_active_blocks} and {@code score_cover_topk} in github.com/bytedance/FlexPrefill, {@code
 * flex_prefill/ops/flex_prefill_attention.py}). Per (batch, query head) slice:
 * <ol>
 *   <li>the last {@code lastQueries} rows' softmax over the keys they may see ({@code 1/sqrt(d)}
 *       scale; scores as f32 fused multiply-add chains, probabilities in double) gives, averaged
 *       over those rows, a mass per column and per diagonal ({@code o = p − k});
 *   <li>the vertical budget is the number of largest column masses whose cumulative sum stays at
 *       most {@code γ}, plus one ({@code score_cover_topk}: the smallest count that reaches γ); the
 *       slash budget likewise over the diagonal masses; each is clamped to {@code [minBudget,
 *       maxBudget]};
 *   <li>MInference's estimator ({@link VerticalSlashEstimator}, its defaults unchanged: forced
 *       sinks and local diagonals, minimum counts) then selects with those budgets, in the chosen
 *       {@link VsSemantics}.
 * </ol>
 * FlexPrefill counts in blocks of 128 tokens; this counts columns and diagonals, the units of
 * MInference's token-level sets. Cost: twice the estimator's {@code lastQueries · Nk · headDim}
 * multiply-adds per slice (the budgets, then the selection).
 *
 * <p>Throws {@link IllegalArgumentException} if {@code gamma} is outside (0, 1], a budget bound is &lt; 1 or
 *     {@code minBudget > maxBudget}
 */
public final class CumulativeMassVerticalSlash extends DataDependentPattern implements EstimatorCost {
    private final double gamma;
    private final int minBudget;
    private final int maxBudget;
    private final VsSemantics semantics;
    private final int lastQueries;

    public CumulativeMassVerticalSlash(double gamma, int minBudget, int maxBudget, VsSemantics semantics) {
        if (!(gamma > 0 && gamma <= 1)) {
            throw new IllegalArgumentException("gamma: must be in (0, 1], got " + gamma);
        }
        this.gamma = gamma;
        this.minBudget = Checks.atLeast("minBudget", minBudget, 1);
        this.maxBudget = Checks.atLeast("maxBudget", maxBudget, minBudget);
        this.semantics = Checks.notNull("semantics", semantics);
        this.lastQueries = VerticalSlashEstimator.LAST_QUERIES;
    }

    @Override
    public String name() {
        return "verticalSlashTopP(mass " + gamma + ", budgets " + minBudget + ".." + maxBudget + ", "
                + semantics.name().toLowerCase().replace('_', '-') + ")";
    }

    /**
     * The budgets of one slice.
     *
     * @param vertical columns to keep (before MInference's minimum of 30)
     * @param slash    diagonals to keep (before MInference's minimum of 50)
     */
    public record Budgets(int vertical, int slash) {
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            float[] qs = Vectors.rows(q, b, h);
            float[] ks = Vectors.rows(k, b, ctx.shape().kvHeadOf(h));
            Budgets budgets = budgets(ctx, qs, ks);
            VerticalSlashEstimator.Selection s = new VerticalSlashEstimator(budgets.vertical(), budgets.slash(), semantics,
                    lastQueries, Double.NaN).select(ctx, qs, ks);
            return VerticalSlash.layout(ctx, s.columns(), s.diagonals(), semantics);
        }, name(), q, k);
    }

    /** The budgets of one slice ({@code q}, {@code k} flat {@code [seq · headDim]}); also the oracle of the rule. */
    public Budgets budgets(PlanContext ctx, float[] q, float[] k) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int d = ctx.shape().headDim();
        if (nq == 0 || nk == 0) {
            return new Budgets(minBudget, minBudget);
        }
        int last = Math.min(lastQueries, nq);
        int r0 = nq - last;
        long oMin = (long) r0 + ctx.queryOffset() - (nk - 1);
        int nDiag = (int) ((long) nq - 1 + ctx.queryOffset() - oMin + 1);
        double[] vertical = new double[nk];
        double[] slash = new double[nDiag];
        KeyPanels panels = KeyPanels.of(k, nk, d);
        float[] dots = new float[KeyPanels.paddedLength(nk)];
        double[] p = new double[nk];
        double scale = 1.0 / Math.sqrt(d);
        for (int r = r0; r < nq; r++) {
            long lastKey = Plans.lastVisibleKey(ctx, r);
            if (lastKey < 0) {
                continue;
            }
            int n = (int) lastKey + 1;
            panels.dots(q, r, n, dots);
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                max = Math.max(max, scale * dots[j]);
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                p[j] = Math.exp(scale * dots[j] - max);
                sum += p[j];
            }
            long pos = (long) r + ctx.queryOffset();
            for (int j = 0; j < n; j++) {
                double m = p[j] / sum / last;
                vertical[j] += m;
                slash[(int) (pos - j - oMin)] += m;
            }
        }
        return new Budgets(clamp(cover(vertical)), clamp(cover(slash)));
    }

    /** {@code score_cover_topk}: how many of the largest values keep their cumulative sum at most γ, plus one. */
    int cover(double[] x) {
        double[] sorted = x.clone();
        Arrays.sort(sorted);
        double cum = 0;
        int count = 0;
        for (int i = sorted.length - 1; i >= 0; i--) {
            cum += sorted[i];
            if (cum > gamma) {
                break;
            }
            count++;
        }
        return count + 1;
    }

    private int clamp(int budget) {
        return Math.max(minBudget, Math.min(maxBudget, budget));
    }

    /** The last queries against every visible key, twice: {@code 2 · min(64, Nq) · Nk · headDim} per slice. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return 2.0 * ctx.shape().slices() * Math.min(lastQueries, ctx.queryLength()) * ctx.keyLength() * ctx.shape().headDim();
    }

    /**
     * The last queries' scores, two prefix sums and the cumulative-mass budgets: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 0.16;
    }
}
