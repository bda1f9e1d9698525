package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * Top-k per query block: the rows of each query tile share one selected key set. Candidates are the
 * keys visible to the tile's last row that are not forced for every row of the tile; each row then
 * admits the shared keys it may see plus its own {@link ForcedKeys}. Two scorings:
 * <ul>
 *   <li>{@link Scoring#POOLED_QUERY}: the score of the tile's mean query against every visible key
 *       (Quest/InfLLM-style block representative). O(N²·headDim / tileRows): a block-level estimator;
 *   <li>{@link Scoring#EXACT_MASS}: the attention mass each key receives, summed over the tile's rows
 *       (each row's exact softmax). It needs every score: <b>as costly as dense attention</b>; the
 *       reference for the pooled scoring.
 * </ul>
 * Ties go to the lower key. Memory O(N) scratch plus O(tiles · k).
 *
 * <p><b>Canonical arithmetic of the pooled scoring</b> (a device reproduces it bit for bit, ties
 * included; {@code CudaTopKEstimatedPlan} does): a tile's mean query channel is {@code 0f} plus the
 * tile's rows in ascending order, one f32 add each, then one f32 division by the tile's row count (a
 * shorter last tile divides by its own count); a key's score is one chain of f32 fused multiply-adds
 * over the channels in ascending order from {@code 0f}, as {@link Vectors#dot}; keys are ranked by
 * that raw score ({@code -0} equal to {@code +0}, NaN never chosen), ties to the lower key. The softmax
 * of the scaled scores is monotone in the raw score, so this is the softmax ranking without the
 * rounding of probabilities to float (which merged near-ties and underflowed to ties far below the
 * maximum; the raw score keeps them apart and never needs an exponential).
 *
 * <p>Throws {@link IllegalArgumentException} if {@code k < 0}, or {@code k == 0} with nothing forced
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

    /** The keys selected per query tile (besides the forced ones). */
    public int k() {
        return k;
    }

    /** The keys every row admits besides the selection: sinks and a causal window. */
    public ForcedKeys forced() {
        return forced;
    }

    /** How keys are scored for a query tile. */
    public Scoring scoring() {
        return scoring;
    }

    @Override
    public String name() {
        return "topKPerBlock(" + k + (scoring == Scoring.EXACT_MASS ? ", exact" : ", pooled") + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        // key panels and score buffers ({panels, scores}) pass from one head to the next, so each
        // planning thread allocates (and zeroes) them about once; the pool dies with this call
        java.util.concurrent.ConcurrentLinkedQueue<float[][]> buffers = new java.util.concurrent.ConcurrentLinkedQueue<>();
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int kvh = ctx.shape().kvHeadOf(h);
            float[][] mine = buffers.poll();
            if (mine == null) {
                mine = new float[2][];
            }
            KeyPanels panels = KeyPanels.of(kt, b, kvh, mine[0]);
            mine[0] = panels.array();
            // pooled scoring reads the tensors row by row (no flat copy of the head); exact mass needs every query row
            int[][] sel = scoring == Scoring.POOLED_QUERY
                    ? select(ctx, null, tileMeans(ctx, (r, dst) -> q.readRow(b, h, r, dst, 0)), panels, mine)
                    : select(ctx, Vectors.rows(q, b, h), null, panels, mine);
            buffers.offer(mine); // the selection holds no reference to them
            HeadLayout direct = SharedKeySetLayout.build(ctx, forced, sel);
            if (direct != null) {
                return direct;
            }
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
        }, name(), q, kt);
    }

    /** The shared selection of each query tile (sorted); also the estimator's oracle. */
    public int[][] select(PlanContext ctx, float[] q, float[] kr) {
        int d = ctx.shape().headDim();
        float[] means = scoring == Scoring.POOLED_QUERY
                ? tileMeans(ctx, (r, dst) -> System.arraycopy(q, r * d, dst, 0, d)) : null;
        return select(ctx, q, means, KeyPanels.of(kr, ctx.keyLength(), d), new float[2][]);
    }

    /** Reads query row {@code r} into {@code dst[0, headDim)}. */
    private interface RowReader {
        void read(int r, float[] dst);
    }

    /** Each query tile's mean query {@code [tile · headDim + x]}: rows summed in order, then divided. */
    private static float[] tileMeans(PlanContext ctx, RowReader rows) {
        int tileRows = ctx.geometry().tileRows();
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int tiles = ctx.queryTiles();
        float[] means = new float[tiles * d];
        float[] row = new float[d];
        for (int t = 0; t < tiles; t++) {
            int r0 = t * tileRows;
            int r1 = Math.min(nq, r0 + tileRows);
            for (int r = r0; r < r1; r++) {
                rows.read(r, row);
                for (int x = 0; x < d; x++) {
                    means[t * d + x] += row[x];
                }
            }
            for (int x = 0; x < d; x++) {
                means[t * d + x] /= (r1 - r0);
            }
        }
        return means;
    }

    /**
     * The selection from the tile means (pooled) or the query rows (exact mass), and the packed keys;
     * {@code scratch[1]} is the score buffer, reused when large enough (and replaced otherwise).
     */
    private int[][] select(PlanContext ctx, float[] q, float[] means, KeyPanels panels, float[][] scratch) {
        int rows = ctx.geometry().tileRows();
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int tiles = ctx.queryTiles();
        int[][] out = new int[tiles][];
        double scale = 1.0 / Math.sqrt(d);
        int stride = KeyPanels.paddedLength(nk);
        if (scoring == Scoring.POOLED_QUERY) {
            // tiles scored in groups, so each key panel is read from memory once per group
            int group = Math.max(1, Math.min(POOL_GROUP, tiles));
            float[] dots = buffer(scratch, (long) group * stride);
            int[] counts = new int[group];
            for (int t0 = 0; t0 < tiles; t0 += group) {
                int g = Math.min(group, tiles - t0);
                int most = 0;
                for (int t = t0; t < t0 + g; t++) {
                    counts[t - t0] = visibleCount(ctx, t);
                    most = Math.max(most, counts[t - t0]);
                }
                if (most > 0 && k > 0) {
                    // each tile scores only the keys it may see
                    panels.dots(means, t0, g, most, dots, stride, counts);
                }
                for (int t = t0; t < t0 + g; t++) {
                    int n = visibleCount(ctx, t);
                    if (n == 0 || k == 0) {
                        out[t] = new int[0];
                        continue;
                    }
                    out[t] = pooledTop(ctx, t, dots, (t - t0) * stride, n);
                }
            }
        } else {
            float[] score = new float[Math.max(1, nk)];
            double[] buf = new double[Math.max(1, nk)];
            float[] dots = buffer(scratch, (long) rows * stride);
            for (int t = 0; t < tiles; t++) {
                int n = visibleCount(ctx, t);
                if (n == 0 || k == 0) {
                    out[t] = new int[0];
                    continue;
                }
                int r0 = t * rows;
                int r1 = Math.min(nq, r0 + rows);
                panels.dots(q, r0, r1 - r0, n, dots, stride);
                java.util.Arrays.fill(score, 0, n, 0f);
                for (int r = r0; r < r1; r++) {
                    long lr = Plans.lastVisibleKey(ctx, r);
                    if (lr >= 0) {
                        softmaxInto(dots, (r - r0) * stride, (int) lr + 1, scale, buf, score);
                    }
                }
                excludeForced(ctx, t, n, score, 0);
                out[t] = TopSelect.top(score, n, k, null);
            }
        }
        return out;
    }

    /** {@code scratch[1]} if it holds {@code size} floats, else a new buffer that replaces it. */
    private static float[] buffer(float[][] scratch, long size) {
        if (scratch[1] == null || scratch[1].length < size) {
            scratch[1] = new float[Math.toIntExact(size)];
        }
        return scratch[1];
    }

    /**
     * Query tiles scored together against each key panel: the key panels stream from memory once
     * per group (so a larger group moves fewer bytes), the group's queries and a panel pair stay in
     * the first cache levels.
     */
    private static final int POOL_GROUP = 64;

    /** Keys the last row of tile {@code t} may see (0 if none). */
    private static int visibleCount(PlanContext ctx, int t) {
        int rows = ctx.geometry().tileRows();
        int r1 = Math.min(ctx.queryLength(), (t + 1) * rows);
        long last = Plans.lastVisibleKey(ctx, r1 - 1);
        return last < 0 ? 0 : (int) last + 1;
    }

    /**
     * The pooled selection of one tile: the top {@code k} candidates by raw score (the group buffer's
     * {@code dots[at, at + n)}, marked in place), ties to the lower key, NaN never.
     */
    private int[] pooledTop(PlanContext ctx, int t, float[] dots, int at, int n) {
        // the forced keys (sinks and the tile's window) are no candidates: NaN is never selected
        excludeForced(ctx, t, n, dots, at);
        return TopSelect.top(dots, at, n, k, null);
    }

    /**
     * Sets the scores {@code score[at + key]} of tile {@code t}'s forced keys (sinks, and the keys every
     * row of the tile has in its window) to NaN: they are no candidates, and NaN is never selected.
     */
    private void excludeForced(PlanContext ctx, int t, int n, float[] score, int at) {
        int rows = ctx.geometry().tileRows();
        int r0 = t * rows;
        int r1 = Math.min(ctx.queryLength(), r0 + rows);
        long pLo = (long) r0 + ctx.queryOffset();
        long pHi = (long) r1 - 1 + ctx.queryOffset();
        for (int key = 0; key < Math.min(n, forced.sinks()); key++) {
            score[at + key] = Float.NaN;
        }
        // keys with pHi − key < window and key <= pLo
        long lo = Math.max(0, pHi - forced.window() + 1);
        long hi = Math.min(n - 1L, pLo);
        for (long key = lo; key <= hi; key++) {
            score[at + (int) key] = Float.NaN;
        }
    }

    /** Adds softmax(scale · dots[at .. at + n)) to {@code acc}. */
    private static void softmaxInto(float[] dots, int at, int n, double scale, double[] buf, float[] acc) {
        double max = Double.NEGATIVE_INFINITY;
        for (int key = 0; key < n; key++) {
            buf[key] = scale * dots[at + key];
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

    /**
     * Pooled queries' scores and the per-block top-k (the exact-mass variant: 1): measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return scoring == Scoring.POOLED_QUERY ? 0.55 : 1;
    }
}
