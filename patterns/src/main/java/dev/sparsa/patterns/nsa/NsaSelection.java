package dev.sparsa.patterns.nsa;

import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.selection.RowBlockLayout;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopFew;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.Tensor;

/**
 * NSA's selected branch (Yuan et al., "Native Sparse Attention: Hardware-Aligned and Natively
 * Trainable Sparse Attention", DeepSeek; reference: {@code naive_nsa_compression} and {@code
 * naive_nsa} in github.com/fla-org/native-sparse-attention, {@code native_sparse_attention/ops/naive.py},
 * where compression and selection blocks coincide). Per (batch, KV head), shared by the query heads
 * of the GQA group (so the kernels stack the group into one tile):
 * <ol>
 *   <li>keys are compressed into blocks of {@code blockSize} ({@link NsaCompression});
 *   <li>each query head {@code h} of the group scores the compressed blocks its row at position
 *       {@code p} has seen whole ({@code (c + 1)·blockSize − 1 ≤ p}) by {@code scale·q·k̄_c} (f32
 *       fused multiply-add chains, {@link Vectors#dot}), and turns them into probabilities by a
 *       softmax in double ({@link Math#exp}); no block seen: all 0;
 *   <li>a block's score is the sum over the group's heads of its probability, the row's own block
 *       ({@code p / blockSize}) counting 1 per head, rounded to f32; with one query head per group
 *       the probabilities rank as the f32 logits do, so the logits are ranked directly (no
 *       exponentials; the own block first, unseen blocks last);
 *   <li>among the blocks up to the own block, the {@code blockCount} best are kept (ties to the
 *       lower block; the own block, at the maximum, always);
 *   <li>the row attends every key of its kept blocks up to its position.
 * </ol>
 * Without causality every block is seen and the own block is the one holding the position. The
 * selection differs from the reference only at ties, which {@code torch.topk} resolves in no
 * documented order. Combine the branches with {@link NativeSparseAttention}.
 *
 * <p>Cost: {@code Nq · ceil(Nk / blockSize) · headDim} multiply-adds per query head (half when
 * causal), and as many exponentials when a group has several heads; the layout is organised by key
 * block ({@link RowBlockLayout}).
 *
 * <p>Throws {@link IllegalArgumentException} if {@code blockSize} or {@code blockCount} is &lt; 1, or the scale
 *     is not NaN or positive
 */
public final class NsaSelection extends DataDependentPattern implements EstimatorCost {
    private static final int ROWS_PER_PASS = 64;

    private final int blockSize;
    private final int blockCount;
    private final double scale;

    public NsaSelection(int blockSize, int blockCount, double scale) {
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
        this.blockCount = Checks.atLeast("blockCount", blockCount, 1);
        this.scale = Vectors.checkScale(scale);
    }

    public int blockSize() {
        return blockSize;
    }

    public int blockCount() {
        return blockCount;
    }

    @Override
    public String name() {
        return "nsaSelection(top " + blockCount + " of " + blockSize + "-token blocks by compressed keys)";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        var s = ctx.shape();
        int groups = s.batch() * s.kvHeads();
        HeadLayout[] layouts = new HeadLayout[groups];
        Workers pool = Workers.current().forTensors(q, k);
        // groups dealt round-robin to the planning workers
        int workers = Math.max(1, Math.min(groups, pool.parallelism()));
        pool.forEach(workers, w -> {
            for (int i = w; i < groups; i += workers) {
                int b = i / s.kvHeads();
                int h0 = (i % s.kvHeads()) * s.groupSize();
                // the query rows are read from the tensor one pass of rows at a time (no copy of a
                // head); the compressed keys of this KV head are NsaCompression.meanPool's, computed
                // by the group's worker
                Selection sel = select(ctx, s.groupSize(), (j, r0, rows, dst) -> {
                    for (int r = 0; r < rows; r++) {
                        q.readRow(b, h0 + j, r0 + r, dst, r * s.headDim());
                    }
                }, Vectors.meanPool(k, b, i % s.kvHeads(), blockSize));
                layouts[i] = RowBlockLayout.compile(ctx, blockSize, sel.blocks(), sel.start());
            }
        });
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe(name());
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                plan.slice(b, h, layouts[b * s.kvHeads() + s.kvHeadOf(h)]);
            }
        }
        return plan.build();
    }

    /**
     * The selection of one GQA group: per query row, its kept blocks, ascending. {@code groupQ[j]}
     * holds the rows of the group's j-th query head flat ({@code [Nq · headDim]}), {@code compressed}
     * the compressed keys ({@code [ceil(Nk / blockSize) · headDim]}). Also the pattern's oracle.
     */
    public int[][] select(PlanContext ctx, float[][] groupQ, float[] compressed) {
        int d = ctx.shape().headDim();
        Selection sel = select(ctx, groupQ.length,
                (j, r0, rows, dst) -> System.arraycopy(groupQ[j], r0 * d, dst, 0, rows * d), compressed);
        int[][] out = new int[ctx.queryLength()][];
        for (int r = 0; r < out.length; r++) {
            out[r] = java.util.Arrays.copyOfRange(sel.blocks(), sel.start()[r], sel.start()[r + 1]);
        }
        return out;
    }

    /** Row {@code r}'s kept blocks, ascending: {@code blocks[start[r], start[r + 1])}. */
    private record Selection(int[] blocks, int[] start) {
    }

    /** Copies query rows {@code [r0, r0 + rows)} of the group's head {@code j} to {@code dst}, flat. */
    @FunctionalInterface
    private interface QueryRows {
        void read(int j, int r0, int rows, float[] dst);
    }

    private Selection select(PlanContext ctx, int heads, QueryRows queries, float[] compressed) {
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int nb = (int) (((long) ctx.keyLength() + blockSize - 1) / blockSize);
        int[] start = new int[nq + 1];
        if (nb == 0) {
            return new Selection(new int[0], start);
        }
        // every row keeps at most min(blockCount, nb) blocks, written one row after another
        int[] out = new int[Math.toIntExact((long) nq * Math.min(blockCount, nb))];
        int at = 0;
        double sc = Vectors.scaleFor(scale, d);
        KeyPanels panels = KeyPanels.of(compressed, nb, d);
        int stride = KeyPanels.paddedLength(nb);
        float[] dots = new float[ROWS_PER_PASS * stride];
        int[] counts = new int[ROWS_PER_PASS];
        boolean oneHead = heads == 1;
        float[] qRows = new float[ROWS_PER_PASS * d];
        // the probability sums of a group of several heads (one head ranks its logits directly)
        double[] sum = oneHead ? null : new double[ROWS_PER_PASS * nb];
        double[] e = oneHead ? null : new double[nb];
        float[] score = oneHead ? null : new float[nb];
        TopFew few = new TopFew();
        for (int r0 = 0; r0 < nq; r0 += ROWS_PER_PASS) {
            int rows = Math.min(ROWS_PER_PASS, nq - r0);
            int most = 0;
            for (int i = 0; i < rows; i++) {
                // the scores a row ranks: its seen blocks, and under causality its own block's slot
                counts[i] = ctx.causal() ? Math.min(nb, Plans.ownBlock(ctx, r0 + i, nb, blockSize) + 1) : nb;
                most = Math.max(most, counts[i]);
            }
            if (!oneHead) {
                java.util.Arrays.fill(sum, 0, rows * nb, 0.0);
            }
            for (int j = 0; j < heads; j++) {
                if (most > 0) {
                    queries.read(j, r0, rows, qRows);
                    panels.dots(qRows, 0, rows, most, dots, stride, counts);
                }
                if (oneHead) {
                    break; // one head: the logits rank as the probabilities do
                }
                for (int i = 0; i < rows; i++) {
                    int seen = seenBlocks(ctx, r0 + i, nb);
                    double max = Double.NEGATIVE_INFINITY;
                    for (int c = 0; c < seen; c++) {
                        e[c] = sc * dots[i * stride + c];
                        max = Math.max(max, e[c]);
                    }
                    double total = 0;
                    for (int c = 0; c < seen; c++) {
                        e[c] = Math.exp(e[c] - max);
                        total += e[c];
                    }
                    for (int c = 0; c < seen; c++) {
                        sum[i * nb + c] += e[c] / total;
                    }
                }
            }
            for (int i = 0; i < rows; i++) {
                int r = r0 + i;
                if (Plans.lastVisibleKey(ctx, r) < 0) {
                    start[r + 1] = at;
                    continue;
                }
                int own = Plans.ownBlock(ctx, r, nb, blockSize);
                int candidates = ctx.causal() ? own + 1 : nb;
                if (oneHead) {
                    // ranked in place in the row's logits (the buffer is rewritten by the next pass)
                    int base = i * stride;
                    for (int c = seenBlocks(ctx, r, nb); c < candidates; c++) {
                        dots[base + c] = Float.NEGATIVE_INFINITY;
                    }
                    dots[base + own] = Float.POSITIVE_INFINITY;
                    at += few.top(dots, base, candidates, blockCount, few.nextGuess(), out, at); // the previous row's k-th: a guess
                    start[r + 1] = at;
                    continue;
                }
                for (int c = 0; c < candidates; c++) {
                    score[c] = (float) sum[i * nb + c];
                }
                score[own] = heads; // 1 per head
                at += few.top(score, 0, candidates, blockCount, few.nextGuess(), out, at);
                start[r + 1] = at;
            }
        }
        return new Selection(out, start);
    }

    /** The blocks row {@code r} has seen whole: {@code c} with {@code (c+1)·blockSize − 1 ≤ p}; all without causality. */
    private int seenBlocks(PlanContext ctx, int r, int nb) {
        if (!ctx.causal()) {
            return nb;
        }
        long p = (long) r + ctx.queryOffset();
        return (int) Math.max(0, Math.min(nb, (p + 1) / blockSize));
    }

    /** Compressed scores: {@code Nq · ceil(Nk / blockSize) · headDim} per query head, half of it when causal. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return Plans.rowBlockScoreMacs(ctx, blockSize);
    }

    /**
     * Compressed keys, the compressed scores and the per-query block top-k: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch"): fitted 0.232 at N 4096 on 2026-12-03, commit 17d89b4, where 0.38 had measured 0.61 of the estimate
     * (docs/perf-data/2026-12-03-17d89b4-epyc2vcpu-planning-cost-calibration.txt).
     */
    @Override
    public double costPerMac() {
        return 0.25;
    }
}
