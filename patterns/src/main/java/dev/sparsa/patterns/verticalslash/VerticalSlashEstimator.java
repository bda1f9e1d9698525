package dev.sparsa.patterns.verticalslash;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * MInference's vertical-slash estimator (Jiang et al., "MInference 1.0", {@code
 * vertical_and_slash_kernel}), per (batch, query head) slice:
 * <ol>
 *   <li>the last {@code lastQueries} (64) query rows score every key they may see ({@code scale·q·k},
 *       causal), softmax per row;
 *   <li>column sums give the vertical scores, sums along each diagonal {@code o = p − k} the slash
 *       scores;
 *   <li>the first {@code forcedColumns} (30) columns and the {@code forcedDiagonals} (100) most local
 *       diagonals ({@code 0 ≤ o < 100}) score +∞, so they are always chosen and count against the
 *       budgets;
 *   <li>the best {@code max(verticalBudget, 30)} columns and {@code max(slashBudget, 50)} diagonals
 *       are kept (each capped at what exists; ties to the lower column or offset).
 * </ol>
 * The sets then compile in the chosen {@link VsSemantics}. Cost O(lastQueries · N · headDim) time,
 * O(N) memory per slice.
 *
 * <p>The arithmetic is canonical, so that the CUDA backend's estimate on the device ({@code
 * sparsa_vs_estimate.cuh}) selects the same columns and diagonals bit for bit, ties included. Per
 * scored row {@code r} and visible key {@code k}:
 * <ul>
 *   <li>the dot {@code q·k} is one chain of f32 {@link Math#fma} over the channels in ascending order
 *       from {@code 0f} ({@code Vectors.dot}); the score {@code x} is that dot times the scale rounded
 *       once to f32 (the scale is {@code 1/sqrt(headDim)} in double when NaN, then cast to float),
 *       one f32 multiply;
 *   <li>the row maximum {@code m} is the largest score that is not NaN ({@code −∞} if none), in f32;
 *   <li>{@code e = CanonicalExp.exp(x − m)} (the subtraction in f32; {@link dev.sparsa.patterns.support.CanonicalExp});
 *   <li>the row sum in double: 32 partials, key {@code k} added to partial {@code k mod 32} in
 *       ascending key order, then the fixed tree {@code p[j] += p[j + h]} for {@code h} = 16, 8, 4,
 *       2, 1 (a warp's shuffle-down reduction);
 *   <li>the probability {@code (float) (e / sum)}: a double division rounded once to f32;
 *   <li>a column's vertical score and a diagonal's slash score are {@code 0f} plus these
 *       probabilities over the scored rows in ascending order, one f32 add each.
 * </ul>
 * Candidates rank by score ({@code −0} equal to {@code +0}, NaN never chosen), then by the lower
 * column or offset ({@code TopSelect}).
 *
 * <p>Throws {@link IllegalArgumentException} if a budget is &lt; 1, {@code lastQueries < 1}, a forced count is
 *     negative or the scale is not NaN or positive
 */
public final class VerticalSlashEstimator extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    /** MInference's defaults. */
    public static final int LAST_QUERIES = 64;
    public static final int FORCED_COLUMNS = 30;
    public static final int FORCED_DIAGONALS = 100;
    public static final int MIN_COLUMNS = 30;
    public static final int MIN_DIAGONALS = 50;

    private final int verticalBudget;
    private final int slashBudget;
    private final VsSemantics semantics;
    private final int lastQueries;
    private final double scale;

    public VerticalSlashEstimator(int verticalBudget, int slashBudget, VsSemantics semantics, int lastQueries, double scale) {
        this.verticalBudget = Checks.atLeast("verticalBudget", verticalBudget, 1);
        this.slashBudget = Checks.atLeast("slashBudget", slashBudget, 1);
        this.semantics = Checks.notNull("semantics", semantics);
        this.lastQueries = Checks.atLeast("lastQueries", lastQueries, 1);
        this.scale = Vectors.checkScale(scale);
    }

    /** MInference's estimator with its defaults and the given budgets. */
    public static VerticalSlashEstimator of(int verticalBudget, int slashBudget, VsSemantics semantics) {
        return new VerticalSlashEstimator(verticalBudget, slashBudget, semantics, LAST_QUERIES, Double.NaN);
    }

    @Override
    public String name() {
        return "verticalSlashEstimate(v " + verticalBudget + ", s " + slashBudget + ", "
                + semantics.name().toLowerCase().replace('_', '-') + ")";
    }

    /** The vertical budget (columns kept: at least {@value #MIN_COLUMNS}). */
    public int verticalBudget() {
        return verticalBudget;
    }

    /** The slash budget (diagonals kept: at least {@value #MIN_DIAGONALS}). */
    public int slashBudget() {
        return slashBudget;
    }

    /** The semantics the sets compile in. */
    public VsSemantics semantics() {
        return semantics;
    }

    /** How many of the last query rows score the keys. */
    public int lastQueries() {
        return lastQueries;
    }

    /** The score scale; NaN for {@code 1/sqrt(headDim)}. */
    public double scale() {
        return scale;
    }

    /** The chosen sets of one slice: sorted columns and sorted diagonal offsets. */
    public record Selection(int[] columns, int[] diagonals) {
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        int from = ctx.queryLength() - Math.min(lastQueries, ctx.queryLength());
        return Plans.perSliceParallel(ctx, (b, h) -> {
            // only the scored rows of Q are read
            Selection s = select(ctx, Vectors.rows(q, b, h, from, ctx.queryLength()), from,
                    KeyPanels.of(k, b, ctx.shape().kvHeadOf(h)));
            return VerticalSlash.layout(ctx, s.columns(), s.diagonals(), semantics);
        }, name(), q, k);
    }

    /** The estimator on one slice ({@code q}, {@code k} flat {@code [seq · headDim]}); also its own oracle. */
    public Selection select(PlanContext ctx, float[] q, float[] k) {
        return select(ctx, q, 0, KeyPanels.of(k, ctx.keyLength(), ctx.shape().headDim()));
    }

    /** {@link #select(PlanContext, float[], float[])} with {@code q} holding the rows from {@code qBase} on. */
    private Selection select(PlanContext ctx, float[] q, int qBase, KeyPanels k) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int d = ctx.shape().headDim();
        if (nq == 0 || nk == 0) {
            return new Selection(new int[0], new int[0]);
        }
        double sc = Vectors.scaleFor(scale, d);
        int last = Math.min(lastQueries, nq);
        int r0 = nq - last;
        long pFirst = (long) r0 + ctx.queryOffset();
        long pLast = (long) nq - 1 + ctx.queryOffset();
        // diagonal offsets o = p - k over the scored rows span [pFirst - (nk - 1), pLast]
        long oMin = pFirst - (nk - 1);
        int nDiag = (int) (pLast - oMin + 1);
        float[] vertical = new float[nk];
        float[] slash = new float[nDiag];
        float[] row = new float[nk];
        double[] part = new double[SUM_LANES];
        float scf = (float) sc;
        // all scored rows against each key panel at once: bitwise the scalar dot, vectorised
        long lastSeen = Plans.lastVisibleKey(ctx, nq - 1);
        int most = (int) Math.max(0, Math.min(nk, lastSeen + 1));
        int stride = KeyPanels.paddedLength(nk);
        float[] dots = new float[last * stride];
        if (most > 0) {
            k.dots(q, r0 - qBase, last, most, dots, stride);
        }
        long maxVisible = -1;
        for (int r = r0; r < nq; r++) {
            long p = (long) r + ctx.queryOffset();
            long lastKey = Plans.lastVisibleKey(ctx, r);
            if (lastKey < 0) {
                continue;
            }
            maxVisible = Math.max(maxVisible, lastKey);
            int at = (r - r0) * stride;
            float max = Float.NEGATIVE_INFINITY;
            for (int key = 0; key <= lastKey; key++) {
                float x = dots[at + key] * scf;
                row[key] = x;
                if (x > max) {
                    max = x;
                }
            }
            java.util.Arrays.fill(part, 0);
            Vectors.expMinus(row, (int) lastKey + 1, max); // CanonicalExp.exp(row[key] − max), on lanes
            for (int key = 0; key <= lastKey; key++) {
                part[key & (SUM_LANES - 1)] += row[key];
            }
            double sum = treeSum(part);
            for (int key = 0; key <= lastKey; key++) {
                float prob = (float) (row[key] / sum);
                vertical[key] += prob;
                slash[(int) (p - key - oMin)] += prob;
            }
        }
        if (maxVisible < 0) {
            return new Selection(new int[0], new int[0]);
        }
        int visibleCols = (int) maxVisible + 1;
        for (int key = 0; key < Math.min(FORCED_COLUMNS, visibleCols); key++) {
            vertical[key] = Float.POSITIVE_INFINITY;
        }
        for (long o = 0; o < FORCED_DIAGONALS; o++) {
            long i = o - oMin;
            if (i >= 0 && i < nDiag) {
                slash[(int) i] = Float.POSITIVE_INFINITY;
            }
        }
        int vBudget = Math.min(visibleCols, Math.max(verticalBudget, MIN_COLUMNS));
        int[] cols = TopSelect.top(vertical, visibleCols, vBudget, null);
        // only diagonals some scored row can see are candidates
        boolean causal = ctx.causal();
        int sBudget = Math.max(slashBudget, MIN_DIAGONALS);
        int[] idx = TopSelect.top(slash, nDiag, sBudget, i -> !causal || i + oMin >= 0);
        int[] diags = new int[idx.length];
        for (int i = 0; i < idx.length; i++) {
            diags[i] = (int) (idx[i] + oMin);
        }
        return new Selection(cols, diags);
    }

    /** Lanes of the row sum: key {@code k} adds to partial {@code k mod 32}. */
    static final int SUM_LANES = 32;

    /**
     * The row sum's fixed tree over the {@value #SUM_LANES} partials: {@code p[j] += p[j + h]} for
     * {@code j < h}, {@code h} = 16, 8, 4, 2, 1 (a warp's shuffle-down reduction); {@code p} is consumed.
     */
    static double treeSum(double[] p) {
        for (int h = SUM_LANES / 2; h > 0; h >>= 1) {
            for (int j = 0; j < h; j++) {
                p[j] += p[j + h];
            }
        }
        return p[0];
    }

    /** The last queries against every visible key: min(64, Nq)·Nk·D per slice. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return (double) ctx.shape().slices() * Math.min(lastQueries, ctx.queryLength()) * ctx.keyLength() * ctx.shape().headDim();
    }

    /**
     * The last queries' scores and two prefix sums: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 0.15;
    }
}
