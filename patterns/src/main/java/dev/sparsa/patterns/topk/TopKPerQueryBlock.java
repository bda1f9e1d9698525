package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * Top-k per query block: the rows of each query tile share one selected key set. Candidates are the
 * keys visible to the tile's last row that are not forced for every row of the tile; each row then
 * admits the shared keys it may see plus its own {@link ForcedKeys}. Two scorings:
 * <ul>
 *   <li>{@link Scoring#POOLED_QUERY}: the softmax of the tile's mean query against every visible key
 *       (Quest/InfLLM-style block representative). O(N²·headDim / tileRows): a block-level estimator;
 *   <li>{@link Scoring#EXACT_MASS}: the attention mass each key receives, summed over the tile's rows
 *       (each row's exact softmax). It needs every score: <b>as costly as dense attention</b>; the
 *       reference for the pooled scoring.
 * </ul>
 * Ties go to the lower key. Memory O(N) scratch plus O(tiles · k).
 *
 * @throws IllegalArgumentException if {@code k < 0}, or {@code k == 0} with nothing forced
 */
public final class TopKPerQueryBlock extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    /** How keys are scored for a query tile. */
    public enum Scoring { POOLED_QUERY, EXACT_MASS }

    private final int k;
    private final ForcedKeys forced;
    private final Scoring scoring;

    public TopKPerQueryBlock(int k, ForcedKeys forced, Scoring scoring) {
        this.forced = Checks.notNull("forced", forced);
        this.scoring = Checks.notNull("scoring", scoring);
        this.k = PerRowSelection.checkK(k, forced);
    }

    @Override
    public String name() {
        return "topKPerBlock(" + k + (scoring == Scoring.EXACT_MASS ? ", exact" : ", pooled") + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        return Plans.perSlice(ctx, (b, h) -> {
            int[][] sel = select(ctx, Vectors.rows(q, b, h), Vectors.rows(kt, b, ctx.shape().kvHeadOf(h)));
            int rows = ctx.geometry().tileRows();
            return TokenSetEncoder.encode(ctx, (row, sink) -> {
                forced.keys(ctx, row, sink);
                long last = Plans.lastVisibleKey(ctx, row);
                for (int key : sel[row / rows]) {
                    if (key <= last) {
                        sink.accept(key, 0f);
                    }
                }
            });
        }, name());
    }

    /** The shared selection of each query tile (sorted); also the estimator's oracle. */
    public int[][] select(PlanContext ctx, float[] q, float[] kr) {
        int rows = ctx.geometry().tileRows();
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int tiles = ctx.queryTiles();
        int[][] out = new int[tiles][];
        float[] score = new float[Math.max(1, ctx.keyLength())];
        double[] buf = new double[Math.max(1, ctx.keyLength())];
        double scale = 1.0 / Math.sqrt(d);
        for (int t = 0; t < tiles; t++) {
            int r0 = t * rows;
            int r1 = Math.min(nq, r0 + rows);
            long last = Plans.lastVisibleKey(ctx, r1 - 1);
            if (last < 0 || k == 0) {
                out[t] = new int[0];
                continue;
            }
            int n = (int) last + 1;
            java.util.Arrays.fill(score, 0, n, 0f);
            if (scoring == Scoring.POOLED_QUERY) {
                float[] mean = new float[d];
                for (int r = r0; r < r1; r++) {
                    for (int x = 0; x < d; x++) {
                        mean[x] += q[r * d + x];
                    }
                }
                for (int x = 0; x < d; x++) {
                    mean[x] /= (r1 - r0);
                }
                softmaxInto(mean, 0, kr, d, n, scale, buf, score);
            } else {
                for (int r = r0; r < r1; r++) {
                    long lr = Plans.lastVisibleKey(ctx, r);
                    if (lr >= 0) {
                        softmaxInto(q, r, kr, d, (int) lr + 1, scale, buf, score);
                    }
                }
            }
            long pLo = (long) r0 + ctx.queryOffset();
            long pHi = (long) r1 - 1 + ctx.queryOffset();
            // keys forced for every row of the tile are not candidates
            out[t] = TopSelect.top(score, n, k, key -> !(key < forced.sinks()
                    || (pLo - key >= 0 && pHi - key < forced.window())));
        }
        return out;
    }

    /** Adds softmax(scale · q_row · K[0..n)) to {@code acc}. */
    private static void softmaxInto(float[] q, int row, float[] kr, int d, int n, double scale, double[] buf, float[] acc) {
        double max = Double.NEGATIVE_INFINITY;
        for (int key = 0; key < n; key++) {
            buf[key] = scale * Vectors.dot(q, row, kr, key, d);
            max = Math.max(max, buf[key]);
        }
        double sum = 0;
        for (int key = 0; key < n; key++) {
            buf[key] = Math.exp(buf[key] - max);
            sum += buf[key];
        }
        for (int key = 0; key < n; key++) {
            acc[key] += (float) (buf[key] / sum);
        }
    }

    /** Pooled: one mean query per tile against every visible key (dense / tileRows); exact mass: dense. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        double dense = dev.sparsa.patterns.EstimatorCost.denseScoreMacs(ctx);
        return scoring == Scoring.EXACT_MASS ? dense : dense / ctx.geometry().tileRows();
    }
}
