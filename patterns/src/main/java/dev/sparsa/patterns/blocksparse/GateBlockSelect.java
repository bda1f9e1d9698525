package dev.sparsa.patterns.blocksparse;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.Arrays;

/**
 * Block selection from block scores the caller supplies, e.g. the output of SeerAttention's learned
 * gate (Gao et al., "SeerAttention: Learning Intrinsic Sparse Attention in Your LLMs"): scores
 * {@code [heads][queryBlocks][keyBlocks]} in the plan's geometry (tileRows × blockCols). Among the
 * causally admissible key blocks of each query tile it keeps either those with score ≥ {@code
 * threshold}, or the best {@code ceil(ratio · admissible)} (ties to the lower index). NaN scores are
 * never kept.
 *
 * <p>Throws {@link IllegalArgumentException} if the scores are null, empty or ragged, the threshold is NaN, the
 *     ratio is outside [0, 1], or (at plan time) the table does not fit the context's blocks or heads
 */
public final class GateBlockSelect implements Pattern {
    private final float[][][] scores;
    private final double threshold;
    private final double ratio;

    private GateBlockSelect(float[][][] scores, double threshold, double ratio) {
        if (scores == null || scores.length == 0) {
            throw new IllegalArgumentException("scores: need [heads][queryBlocks][keyBlocks], got none");
        }
        for (int h = 0; h < scores.length; h++) {
            if (scores[h] == null || scores[h].length != scores[0].length) {
                throw new IllegalArgumentException("scores[" + h + "]: ragged table");
            }
            for (float[] row : scores[h]) {
                if (row == null || row.length != scores[0][0].length) {
                    throw new IllegalArgumentException("scores[" + h + "]: ragged table");
                }
            }
        }
        this.scores = scores;
        this.threshold = threshold;
        this.ratio = ratio;
    }

    /** Keeps blocks whose score is at least {@code threshold}. */
    public static GateBlockSelect byThreshold(float[][][] scores, double threshold) {
        if (Double.isNaN(threshold)) {
            throw new IllegalArgumentException("threshold: must be a number, got NaN");
        }
        return new GateBlockSelect(deepCopy(scores), threshold, Double.NaN);
    }

    /** Keeps the best {@code ceil(ratio · admissible)} blocks of each query tile. */
    public static GateBlockSelect byRatio(float[][][] scores, double ratio) {
        Checks.inRange("ratio", ratio, 0, 1);
        return new GateBlockSelect(deepCopy(scores), Double.NaN, ratio);
    }

    private static float[][][] deepCopy(float[][][] s) {
        if (s == null) {
            return null;
        }
        float[][][] c = new float[s.length][][];
        for (int h = 0; h < s.length; h++) {
            if (s[h] == null) {
                return s; // the constructor reports it
            }
            c[h] = new float[s[h].length][];
            for (int i = 0; i < s[h].length; i++) {
                c[h][i] = s[h][i] == null ? null : s[h][i].clone();
            }
        }
        return c;
    }

    @Override
    public String name() {
        return Double.isNaN(ratio) ? "gateSelect(threshold " + threshold + ")" : "gateSelect(ratio " + ratio + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        int qt = ctx.queryTiles();
        int kb = ctx.keyBlocks();
        if (scores[0].length != qt || scores[0][0].length != kb) {
            throw new IllegalArgumentException("scores: the table has " + scores[0].length + "x" + scores[0][0].length
                    + " blocks but the context has " + qt + "x" + kb + " (tileRows x blockCols " + ctx.geometry() + ")");
        }
        if (scores.length != 1 && scores.length != ctx.shape().qHeads()) {
            throw new IllegalArgumentException("scores: the table has " + scores.length + " heads but the context has "
                    + ctx.shape().qHeads() + " query heads");
        }
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        return Plans.perHead(ctx, h -> scores.length == 1 ? 0 : h, h -> BlockLists.compile(ctx, rows, cols,
                t -> select(scores[scores.length == 1 ? 0 : h][t],
                        Plans.lastVisibleBlock(ctx, t * rows, Math.min(rows, ctx.queryLength() - t * rows)))), name());
    }

    /** The kept blocks among {@code [0, lastBlock]} of one score row (the oracle of the selection rule). */
    public int[] select(float[] row, int lastBlock) {
        int n = lastBlock + 1;
        if (n <= 0) {
            return new int[0];
        }
        if (!Double.isNaN(threshold)) {
            int[] out = new int[n];
            int m = 0;
            for (int j = 0; j < n; j++) {
                if (row[j] >= threshold) {
                    out[m++] = j;
                }
            }
            return Arrays.copyOf(out, m);
        }
        int keep = (int) Math.ceil(ratio * n - 1e-9);
        return dev.sparsa.patterns.support.TopSelect.top(row, n, keep, null);
    }

    @Override
    public String toString() {
        return name();
    }
}
