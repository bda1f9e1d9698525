package dev.sparsa.patterns.blocksparse;

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
 * MInference's block-sparse estimate (Jiang et al., "MInference 1.0", its {@code block_sparse}
 * head type: {@code _build_block_index} and the block-sparse Triton kernel in {@code
 * minference/ops/block_sparse_flash_attention.py}), and BiFormer's bi-level routing (Zhu et al.,
 * "BiFormer: Vision Transformer with Bi-Level Routing Attention"), which is the same computation on
 * regions: Q and K are mean-pooled over blocks of {@code blockSize} tokens (a shorter last block
 * counts its missing rows as zeros, as both pad their inputs); block {@code i} scores key block
 * {@code j} by {@code Q̄_i · K̄_j}; under causality only blocks whose first key is not after the query
 * block's last position are candidates (block-causal); each query block keeps its {@code topBlocks}
 * best key blocks (ties to the lower index). Attention is then exact on the kept blocks' tokens,
 * under causality. Per (batch, query head) slice, from that head's Q and its KV head's K.
 *
 * <p>Neither reference forces the diagonal block: when it does not score among the best, a query
 * block sees only earlier blocks. {@code keepDiagonal} adds it anyway (an option of Sparsa's, off
 * in both factories).
 *
 * <p>The arithmetic is canonical, so that the CUDA backend's estimate on the device selects the
 * same blocks bit for bit, ties included: a pooled channel is {@code 0f} plus the block's rows in
 * ascending order (one f32 add each), divided by {@code blockSize} (f32 division); a score is one
 * chain of {@link Math#fma} over the channels in ascending order, starting from {@code 0f}
 * ({@code Vectors.dot}); candidates rank by score ({@code -0} equal to {@code +0}, NaN never
 * chosen), then by the lower block index.
 *
 * <p>Cost: O((N/blockSize)² · headDim) for the scores, computed one query block at a time, so memory
 * is O(N/blockSize) beyond the pooled vectors; never N×N.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code topBlocks < 1} or {@code blockSize < 1}
 */
public final class MeanPoolBlockTopK extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int topBlocks;
    private final int blockSize;
    private final boolean keepDiagonal;
    private final String label;

    public MeanPoolBlockTopK(int topBlocks, int blockSize, boolean keepDiagonal, String label) {
        this.topBlocks = Checks.atLeast("topBlocks", topBlocks, 1);
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
        this.keepDiagonal = keepDiagonal;
        this.label = label == null ? "meanPoolTopK" : label;
    }

    /** MInference's block-sparse head: 64-token blocks, the {@code topBlocks} best (no forced diagonal). */
    public static MeanPoolBlockTopK minference(int topBlocks) {
        return new MeanPoolBlockTopK(topBlocks, 64, false, "minferenceBlockSparse");
    }

    /** BiFormer's bi-level routing: regions of {@code regionSize} tokens, the {@code topRegions} best. */
    public static MeanPoolBlockTopK biLevelRouting(int topRegions, int regionSize) {
        return new MeanPoolBlockTopK(topRegions, regionSize, false, "biLevelRouting");
    }

    public int topBlocks() {
        return topBlocks;
    }

    public int blockSize() {
        return blockSize;
    }

    public boolean keepDiagonal() {
        return keepDiagonal;
    }

    @Override
    public String name() {
        return label + "(top " + topBlocks + " of " + blockSize + "-token blocks" + (keepDiagonal ? " + diagonal" : "") + ")";
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

    /**
     * The selection for one slice: per query block, its sorted key blocks. {@code q} and {@code k}
     * are flat {@code [seq · headDim]} rows. This is also the estimator's plain-Java oracle.
     */
    public int[][] select(PlanContext ctx, float[] q, float[] k) {
        int d = ctx.shape().headDim();
        return selectPooled(ctx, Vectors.meanPool(q, ctx.queryLength(), d, blockSize),
                Vectors.meanPool(k, ctx.keyLength(), d, blockSize));
    }

    /** {@link #select} from the block means of Q ({@code qp}) and K ({@code kp}). */
    private int[][] selectPooled(PlanContext ctx, float[] qp, float[] kp) {
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int qBlocks = Checks.groups(nq, blockSize);
        int kBlocks = Checks.groups(nk, blockSize);
        KeyPanels panels = KeyPanels.of(kp, kBlocks, d);
        float[] scores = new float[KeyPanels.paddedLength(kBlocks)];
        int[][] out = new int[qBlocks][];
        for (int i = 0; i < qBlocks; i++) {
            long lastKey = Plans.lastVisibleKey(ctx, Checks.groupEnd(i, blockSize, nq) - 1);
            int lastBlock = lastKey < 0 ? -1 : (int) Math.min(kBlocks - 1, lastKey / blockSize);
            if (lastBlock >= 0) {
                panels.dots(qp, i, lastBlock + 1, scores); // bitwise Vectors.dot
            }
            int[] top = TopSelect.top(scores, lastBlock + 1, topBlocks, null);
            int diag = -1;
            if (keepDiagonal && lastBlock >= 0) {
                diag = lastBlock;
            }
            out[i] = withBlock(top, diag);
        }
        return out;
    }

    private static int[] withBlock(int[] sorted, int extra) {
        if (extra < 0 || java.util.Arrays.binarySearch(sorted, extra) >= 0) {
            return sorted;
        }
        int[] r = java.util.Arrays.copyOf(sorted, sorted.length + 1);
        r[sorted.length] = extra;
        java.util.Arrays.sort(r);
        return r;
    }

    /** Pooled scores, (Nq/bs)·(Nk/bs)·D per slice (half when causal), plus the pooling pass, (Nq + Nk)·D. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return Plans.pooledBlockScoreMacs(ctx, blockSize);
    }

    /**
     * Pooling, the pooled scores and the per-block selection: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 1.25;
    }
}
