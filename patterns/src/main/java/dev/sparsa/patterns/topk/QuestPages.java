package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.ScoringProvider;
import dev.sparsa.patterns.support.ScoringSupport;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * Quest's query-aware page selection (Tang et al., "Quest: Query-Aware Sparsity for Efficient
 * Long-Context LLM Inference"; its reference {@code _ref_self_approx_attention} and page budget in
 * github.com/mit-han-lab/Quest): K is cut into pages of {@code pageSize} keys; each page keeps the
 * per-channel minimum and maximum of its keys; a query's upper bound on a page's scores is {@code
 * Σ_c max(q_c·min_c, q_c·max_c)}. The budget is in tokens, as Quest's: {@code P = tokenBudget /
 * pageSize} pages (rounded down, at least 1) per row, the row's last visible page among them. A row
 * whose visible pages number at most {@code P} keeps them all; otherwise it keeps its last visible
 * page (the one holding its newest keys; in decode, the cache's last page) and the {@code P − 1} best
 * of the earlier ones (ties to the lower page). Every visible key of a kept page is admitted, plus
 * the {@link ForcedKeys} (an addition of Sparsa's; none in {@link #QuestPages(int, int)}). Cost
 * O(Nq · N/pageSize · headDim): a decode-time tool (one row), quadratic over a whole prefill.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code pageSize < 1} or {@code tokenBudget < pageSize}.
 */
public final class QuestPages extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int pageSize;
    private final int tokenBudget;
    private final int pages;
    private final ForcedKeys forced;

    /** Quest as its reference defines it: {@code tokenBudget / pageSize} pages, the last always kept. */
    public QuestPages(int pageSize, int tokenBudget) {
        this(pageSize, tokenBudget, ForcedKeys.NONE);
    }

    public QuestPages(int pageSize, int tokenBudget, ForcedKeys forced) {
        this.pageSize = Checks.atLeast("pageSize", pageSize, 1);
        this.forced = Checks.notNull("forced", forced);
        if (tokenBudget < pageSize) {
            throw new IllegalArgumentException("tokenBudget: must hold at least one page of " + pageSize + " tokens, got "
                    + tokenBudget);
        }
        this.tokenBudget = tokenBudget;
        this.pages = tokenBudget / pageSize;
    }

    /** Pages per row, the last one included. */
    public int pageBudget() {
        return pages;
    }

    @Override
    public String name() {
        return "quest(" + tokenBudget + " tokens in pages of " + pageSize + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int[][] sel = select(ctx, Vectors.rows(q, b, h), Vectors.rows(k, b, ctx.shape().kvHeadOf(h)));
            return PerRowSelection.layout(ctx, forced, sel);
        }, name(), q, k);
    }

    /** Per row, the visible keys of its kept pages, sorted (the forced keys not included); the estimator's oracle too. */
    public int[][] select(PlanContext ctx, float[] q, float[] k) {
        int d = ctx.shape().headDim();
        int nk = ctx.keyLength();
        int np = (int) ((nk + (long) pageSize - 1) / pageSize);
        float[] min = new float[np * d];
        float[] max = new float[np * d];
        java.util.Arrays.fill(min, Float.POSITIVE_INFINITY);
        java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int key = 0; key < nk; key++) {
            int pg = key / pageSize;
            for (int x = 0; x < d; x++) {
                float v = k[key * d + x];
                min[pg * d + x] = Math.min(min[pg * d + x], v);
                max[pg * d + x] = Math.max(max[pg * d + x], v);
            }
        }
        // the bounds as panels of L pages, channel-major (pages past the last hold zeros, never ranked),
        // scored four query rows at a time: lane i runs page i's sum in the plain loop's order
        ScoringSupport kernels = ScoringProvider.get();
        int lanes = kernels.panelLanes();
        int groups = (np + lanes - 1) / lanes;
        int stride = Math.max(1, groups * lanes);
        float[] minPanels = new float[groups * lanes * d];
        float[] maxPanels = new float[groups * lanes * d];
        for (int pg = 0; pg < np; pg++) {
            int at = (pg / lanes) * lanes * d + pg % lanes;
            for (int x = 0; x < d; x++) {
                minPanels[at + x * lanes] = min[pg * d + x];
                maxPanels[at + x * lanes] = max[pg * d + x];
            }
        }
        float[] bound = new float[4 * stride];
        int[][] out = new int[ctx.queryLength()][];
        for (int r = 0; r < out.length; r++) {
            int j = r % 4;
            if (j == 0) {
                scoreFour(ctx, kernels, minPanels, maxPanels, d, q, r, Math.min(4, out.length - r), bound, stride);
            }
            long last = Plans.lastVisibleKey(ctx, r);
            if (last < 0) {
                out[r] = new int[0];
                continue;
            }
            int lastPage = (int) (last / pageSize);
            int[] chosen = lastPage + 1 <= pages ? null // every visible page
                    : TopSelect.top(bound, j * stride, lastPage, pages - 1, null);
            int n = 0;
            if (chosen == null) {
                out[r] = java.util.stream.IntStream.rangeClosed(0, (int) last).toArray();
                continue;
            }
            int[] keys = new int[(int) Math.min((long) (chosen.length + 1) * pageSize, last + 1)];
            for (int pg : chosen) {
                for (int key = pg * pageSize; key < (pg + 1) * pageSize; key++) {
                    keys[n++] = key;
                }
            }
            for (long key = (long) lastPage * pageSize; key <= last; key++) {
                keys[n++] = (int) key;
            }
            out[r] = java.util.Arrays.copyOf(keys, n);
        }
        return out;
    }

    /**
     * The bounds of the pages rows {@code r0 .. r0 + rows − 1} rank (those before each row's last
     * visible page, for rows with more visible pages than the budget) into {@code bound[j · stride ..]}.
     */
    private void scoreFour(PlanContext ctx, ScoringSupport kernels, float[] minPanels, float[] maxPanels, int d,
                           float[] q, int r0, int rows, float[] bound, int stride) {
        int need = 0;
        for (int j = 0; j < rows; j++) {
            long last = Plans.lastVisibleKey(ctx, r0 + j);
            int lastPage = last < 0 ? 0 : (int) (last / pageSize);
            need = lastPage + 1 > pages ? Math.max(need, lastPage) : need;
        }
        int lanes = kernels.panelLanes();
        for (int g = 0; g * lanes < need; g++) {
            if (rows == 4) {
                kernels.boundsFourByOne(minPanels, maxPanels, d, q, r0, g, bound, 0, stride);
            } else {
                for (int j = 0; j < rows; j++) {
                    kernels.boundsOneByOne(minPanels, maxPanels, d, q, r0 + j, g, bound, j * stride);
                }
            }
        }
    }

    /** Bounds: Nq·(Nk/pageSize)·D per slice (half when causal), plus the min/max pass over K. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        double pagesTotal = Math.ceil(ctx.keyLength() / (double) pageSize);
        return (double) ctx.shape().slices() * (ctx.queryLength() * pagesTotal * (ctx.causal() ? 0.5 : 1) + ctx.keyLength()) * ctx.shape().headDim();
    }

    /**
     * Page bounds, the bound scores and the page top-k: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 1.1;
    }
}
