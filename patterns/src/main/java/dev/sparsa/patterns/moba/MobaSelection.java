package dev.sparsa.patterns.moba;

import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.selection.RowBlockLayout;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopFew;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * MoBA, Mixture of Block Attention (Lu et al., "MoBA: Mixture of Block Attention for Long-Context
 * LLMs", Moonshot AI; reference: the authors' {@code moba_attn_varlen_naive} in
 * github.com/MoonshotAI/MoBA, {@code moba/moba_naive.py}). Per (batch, query head) slice, with the
 * keys of its KV head cut into blocks of {@code blockSize} keys (the last one shorter):
 * <ol>
 *   <li>each block's gate key is the mean of its keys (over the keys it holds);
 *   <li>query row {@code r} at position {@code p} scores block {@code j} by {@code q_r · k̄_j} (one
 *       f32 fused multiply-add chain over the channels in order, {@link Vectors#dot});
 *   <li>its own block {@code c = p / blockSize} is always kept; under causality blocks after {@code
 *       c} are never candidates; of the others it keeps the {@code topK − 1} best (larger scores
 *       first, ties to the lower block, NaN never);
 *   <li>it attends every key of its kept blocks that it may see: the earlier blocks whole, its own
 *       block up to its position.
 * </ol>
 * Without causality every block is a candidate and the own block is the one holding the query's
 * position (clamped to the last block). The selection differs from the reference only where the
 * reference's {@code torch.topk} meets ties, which it resolves in no documented order.
 *
 * <p>The layout is organised by key block ({@link RowBlockLayout}), as MoBA's efficient
 * implementation runs it: the queries that chose a block share its tiles. Cost of the selection:
 * {@code Nq · (Nk / blockSize) · headDim} multiply-adds per slice (half when causal), O(Nk / blockSize)
 * scratch per row.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code blockSize < 1} or {@code topK < 1}
 */
public final class MobaSelection extends DataDependentPattern implements EstimatorCost {
    private static final int ROWS_PER_PASS = 64;

    private final int blockSize;
    private final int topK;

    public MobaSelection(int blockSize, int topK) {
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
        this.topK = Checks.atLeast("topK", topK, 1);
    }

    public int blockSize() {
        return blockSize;
    }

    public int topK() {
        return topK;
    }

    @Override
    public String name() {
        return "moba(top " + topK + " of " + blockSize + "-token blocks, own block kept)";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int[][] blocks = select(ctx, Vectors.rows(q, b, h), Vectors.meanPool(k, b, ctx.shape().kvHeadOf(h), blockSize));
            return RowBlockLayout.compile(ctx, blockSize, r -> blocks[r]);
        }, name(), q, k);
    }

    /**
     * The selection of one slice: per query row, its kept blocks, ascending. {@code q} holds the
     * slice's query rows flat ({@code [Nq · headDim]}), {@code gateKeys} the block means ({@link
     * Vectors#meanPool(float[], int, int, int)} of the keys). Also the pattern's plain-Java oracle.
     */
    public int[][] select(PlanContext ctx, float[] q, float[] gateKeys) {
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int nb = (int) (((long) ctx.keyLength() + blockSize - 1) / blockSize);
        int[][] out = new int[nq][];
        if (nb == 0) {
            java.util.Arrays.fill(out, new int[0]);
            return out;
        }
        KeyPanels panels = KeyPanels.of(gateKeys, nb, d);
        int stride = KeyPanels.paddedLength(nb);
        float[] scores = new float[ROWS_PER_PASS * stride];
        int[] counts = new int[ROWS_PER_PASS];
        TopFew few = new TopFew();
        for (int r0 = 0; r0 < nq; r0 += ROWS_PER_PASS) {
            int rows = Math.min(ROWS_PER_PASS, nq - r0);
            int most = 0;
            for (int i = 0; i < rows; i++) {
                counts[i] = ctx.causal() ? Plans.ownBlock(ctx, r0 + i, nb, blockSize) + 1 : nb; // the candidates, own block last
                most = Math.max(most, counts[i]);
            }
            panels.dots(q, r0, rows, most, scores, stride, counts);
            for (int i = 0; i < rows; i++) {
                int r = r0 + i;
                long last = Plans.lastVisibleKey(ctx, r);
                if (last < 0) {
                    out[r] = new int[0];
                    continue;
                }
                int own = Plans.ownBlock(ctx, r, nb, blockSize);
                int candidates = ctx.causal() ? own + 1 : nb;
                scores[i * stride + own] = Float.POSITIVE_INFINITY;
                out[r] = few.top(scores, i * stride, candidates, topK, few.nextGuess()); // the previous row's k-th: a guess
            }
        }
        return out;
    }

    /** Gate scores: {@code Nq · ceil(Nk / blockSize) · headDim} per slice, half of it when causal. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return Plans.rowBlockScoreMacs(ctx, blockSize);
    }

    /**
     * Mean-pooled key blocks, the gate scores and the per-query block top-k: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch"): fitted 0.568 at N 4096 on 2026-12-03, commit 17d89b4, where 0.42 had measured 1.35 of the estimate
     * (docs/perf-data/2026-12-03-17d89b4-epyc2vcpu-planning-cost-calibration.txt).
     */
    @Override
    public double costPerMac() {
        return 0.50;
    }
}
