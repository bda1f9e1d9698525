package dev.sparsa.patterns.adaptive;

import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.blocksparse.BlockLists;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * The mean-pooled block estimate with an adaptive budget per head: FlexPrefill's query-aware block
 * selection (Lai et al., "FlexPrefill: A Context-Aware Sparse Attention Mechanism for Efficient
 * Long-Sequence Inference"; reference: {@code get_active_blocks} and {@code score_cover_idx} in
 * github.com/bytedance/FlexPrefill, {@code flex_prefill/ops/flex_prefill_attention.py}). Per (batch,
 * query head) slice, with Q and K mean-pooled over blocks of {@code blockSize} (means over the rows
 * a block holds):
 * <ol>
 *   <li>query block {@code i} scores the key blocks it may see under block causality ({@code j ≤}
 *       the block holding its first position) by {@code Q̄_i · K̄_j / sqrt(d)} (f32 fused
 *       multiply-add chains, {@link Vectors#dot}), turned into probabilities by a softmax in double
 *       per query block;
 *   <li>all (query block, key block) probabilities of the head are ranked together, descending
 *       (ties to the lower query block, then key block), and the longest prefix whose cumulative
 *       sum stays at most {@code γ · (query blocks)} is kept, so a head whose attention is
 *       concentrated keeps few blocks and a diffuse one many;
 *   <li>every query block also keeps its diagonal block (MInference's kernels always compute it;
 *       FlexPrefill instead unions its minimum vertical-slash budget);
 *   <li>every row attends every key of its query block's kept blocks it may see.
 * </ol>
 * The fixed-budget estimate is {@code Patterns.minferenceBlockSparse}; this one adds the budget rule
 * without touching it. Cost: {@code (Nq/blockSize)·(Nk/blockSize)·headDim} multiply-adds per slice
 * (half when causal) and a sort of those pairs.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code gamma} is outside (0, 1] or {@code blockSize < 1}
 */
public final class CumulativeMassBlocks extends DataDependentPattern implements EstimatorCost {
    private final double gamma;
    private final int blockSize;

    public CumulativeMassBlocks(double gamma, int blockSize) {
        if (!(gamma > 0 && gamma <= 1)) {
            throw new IllegalArgumentException("gamma: must be in (0, 1], got " + gamma);
        }
        this.gamma = gamma;
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
    }

    @Override
    public String name() {
        return "meanPoolTopP(mass " + gamma + " of " + blockSize + "-token blocks per head + diagonal)";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int[][] lists = selectPooled(ctx, Vectors.meanPool(q, b, h, blockSize),
                    Vectors.meanPool(k, b, ctx.shape().kvHeadOf(h), blockSize));
            return BlockLists.compile(ctx, blockSize, blockSize, i -> lists[i]);
        }, name(), q, k);
    }

    /** The selection of one slice from its flat rows ({@code [seq · headDim]}); also the oracle of the rule. */
    public int[][] select(PlanContext ctx, float[] q, float[] k) {
        int d = ctx.shape().headDim();
        return selectPooled(ctx, Vectors.meanPool(q, ctx.queryLength(), d, blockSize),
                Vectors.meanPool(k, ctx.keyLength(), d, blockSize));
    }

    private int[][] selectPooled(PlanContext ctx, float[] qp, float[] kp) {
        int d = ctx.shape().headDim();
        int qBlocks = Checks.groups(ctx.queryLength(), blockSize);
        int kBlocks = Checks.groups(ctx.keyLength(), blockSize);
        int[][] out = new int[qBlocks][];
        if (kBlocks == 0) {
            Arrays.fill(out, new int[0]);
            return out;
        }
        KeyPanels panels = KeyPanels.of(kp, kBlocks, d);
        float[] dots = new float[KeyPanels.paddedLength(kBlocks)];
        double scale = 1.0 / Math.sqrt(d);
        int[] visible = new int[qBlocks];
        // every (query block, key block) probability, packed with its flat index for one sort
        double[] prob = new double[qBlocks * kBlocks];
        int pairs = 0;
        for (int i = 0; i < qBlocks; i++) {
            visible[i] = visibleBlocks(ctx, i, kBlocks);
            int n = visible[i];
            if (n == 0) {
                continue;
            }
            panels.dots(qp, i, n, dots);
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                max = Math.max(max, scale * dots[j]);
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                prob[i * kBlocks + j] = Math.exp(scale * dots[j] - max);
                sum += prob[i * kBlocks + j];
            }
            for (int j = 0; j < n; j++) {
                prob[i * kBlocks + j] /= sum;
            }
            pairs += n;
        }
        Integer[] order = new Integer[pairs];
        for (int i = 0, m = 0; i < qBlocks; i++) {
            for (int j = 0; j < visible[i]; j++) {
                order[m++] = i * kBlocks + j;
            }
        }
        Arrays.sort(order, (a, b) -> prob[a] != prob[b] ? Double.compare(prob[b], prob[a]) : Integer.compare(a, b));
        boolean[] kept = new boolean[qBlocks * kBlocks];
        double budget = gamma * qBlocks;
        double cum = 0;
        for (int m = 0; m < pairs; m++) {
            cum += prob[order[m]];
            if (cum > budget) {
                break;
            }
            kept[order[m]] = true;
        }
        for (int i = 0; i < qBlocks; i++) {
            int n = visible[i];
            if (n > 0) {
                kept[i * kBlocks + n - 1] = true; // the diagonal: the last block the query block may see
            }
            int[] list = new int[n];
            int c = 0;
            for (int j = 0; j < n; j++) {
                if (kept[i * kBlocks + j]) {
                    list[c++] = j;
                }
            }
            out[i] = Arrays.copyOf(list, c);
        }
        return out;
    }

    /** Key blocks query block {@code i} may see: up to the block holding its first position; all without causality. */
    private int visibleBlocks(PlanContext ctx, int i, int kBlocks) {
        if (!ctx.causal()) {
            return kBlocks;
        }
        long last = Plans.lastVisibleKey(ctx, (int) Math.min(ctx.queryLength() - 1L, ((long) i + 1) * blockSize - 1));
        if (last < 0) {
            return 0;
        }
        long firstPos = (long) i * blockSize + ctx.queryOffset();
        return (int) Math.min(kBlocks, Math.max(0, firstPos) / blockSize + 1);
    }

    /** Pooled scores, {@code (Nq/blockSize)·(Nk/blockSize)·headDim} per slice (half when causal), plus the pooling pass, {@code (Nq + Nk)·headDim}. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return Plans.pooledBlockScoreMacs(ctx, blockSize);
    }

    /**
     * Pooling, the pooled scores and the cumulative-mass selection: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 1.3;
    }
}
