package dev.sparsa.patterns.xattention;

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
 * XAttention (Xu et al., "XAttention: Block Sparse Attention with Antidiagonal Scoring"; reference:
 * {@code xattn_estimate} (its plain-PyTorch path, {@code select_mode="inverse"}) in {@code
 * xattn/src/Xattention.py} and {@code find_blocks_chunked} in {@code xattn/src/utils.py},
 * github.com/mit-han-lab/x-attention). Per (batch, query head) slice, with blocks of {@code
 * blockSize} and a {@code stride} dividing it:
 * <ol>
 *   <li><b>antidiagonal scores.</b> Query group {@code i} (rows {@code [i·S, i·S + S)}) and key group
 *       {@code j} (keys {@code [j·S, j·S + S)}) score {@code Σ_s q[i·S + S − 1 − s] · k[j·S + s] /
 *       sqrt(d) / S}, the sum along the group's antidiagonal (missing rows and keys count as zero;
 *       one f32 fused multiply-add chain over the concatenated channels, {@link Vectors#dot});
 *       under causality group {@code j} is visible to group {@code i} when {@code j·S ≤ i·S +
 *       offset};
 *   <li>each query group's scores become probabilities (softmax in double over its visible groups,
 *       {@link Math#exp}), summed per (query block, key block) into the block's mass;
 *   <li><b>threshold on cumulative mass.</b> Per query block, with {@code R = τ · Σ mass}: under
 *       causality the first key block and the diagonal block (the one holding the block's first
 *       position) are always kept, and the other blocks, by mass descending (ties to the lower
 *       block), are kept while {@code F + C < R}, where {@code F} is the kept blocks' mass and {@code
 *       C} the mass of the blocks ranked before the candidate, <em>and the candidate's own</em> when
 *       the first and the diagonal block are two (the authors' cumulative sum is one position
 *       behind then; reproduced); blocks after the diagonal are then dropped. Without causality
 *       nothing is forced and a block is kept while the mass ranked before it is below {@code R};
 *   <li>every row of the query block attends every key of its kept blocks it may see.
 * </ol>
 * Cost: {@code Nq · Nk · headDim / S} multiply-adds per slice (half when causal) and one exponential
 * per (query group, key group); memory O(Nk / S) per query block.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code blockSize < 1}, {@code stride} does not divide it, or
 *     {@code threshold} is outside (0, 1]
 */
public final class XAttention extends DataDependentPattern implements EstimatorCost {
    private static final int GROUPS_PER_PASS = 64;
    private final int blockSize;
    private final int stride;
    private final double threshold;

    public XAttention(int blockSize, int stride, double threshold) {
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
        this.stride = Checks.atLeast("stride", stride, 1);
        if (blockSize % stride != 0) {
            throw new IllegalArgumentException("stride: must divide blockSize " + blockSize + ", got " + stride);
        }
        if (!(threshold > 0 && threshold <= 1)) {
            throw new IllegalArgumentException("threshold: must be in (0, 1], got " + threshold);
        }
        this.threshold = threshold;
    }

    @Override
    public String name() {
        return "xattention(threshold " + threshold + ", " + blockSize + "-token blocks, stride " + stride + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int[][] lists = select(ctx, Vectors.rows(q, b, h), Vectors.rows(k, b, ctx.shape().kvHeadOf(h)));
            return BlockLists.compile(ctx, blockSize, blockSize, qb -> lists[qb]);
        }, name(), q, k);
    }

    /**
     * The selection of one slice ({@code q}, {@code k} flat {@code [seq · headDim]}): per query block,
     * its kept key blocks, ascending. Also the pattern's plain-Java oracle.
     */
    public int[][] select(PlanContext ctx, float[] q, float[] k) {
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int qGroups = Checks.groups(nq, stride);
        int kGroups = Checks.groups(nk, stride);
        int qBlocks = Checks.groups(nq, blockSize);
        int kBlocks = Checks.groups(nk, blockSize);
        int perBlock = blockSize / stride;
        int[][] out = new int[qBlocks][];
        if (kGroups == 0 || qGroups == 0) {
            Arrays.fill(out, new int[0]);
            return out;
        }
        if (qGroups == 1 && kGroups == 1) {
            // a stride past both sequences: one group each, so the reshaped rows (stride · d wide,
            // which may not fit in memory) are not needed; the softmax over one score is 1
            double[] mass = {visibleGroups(ctx, 0, 1, ctx.queryOffset()) == 0 ? 0 : oneGroupFinite(q, k, nq, nk, d) ? 1
                    : Double.NaN};
            out[0] = anyVisible(ctx, 0) ? keep(mass, 1, ctx.causal(), 0) : new int[0];
            return out;
        }
        int width = stride * d; // stride < max(nq, nk) here, so this fits
        // reshaped queries (rows reversed within a group) and keys, zero where the sequence ends
        float[] qr = new float[qGroups * width];
        for (int i = 0; i < qGroups; i++) {
            for (int s = 0; s < stride; s++) {
                int row = i * stride + stride - 1 - s;
                if (row < nq) {
                    System.arraycopy(q, row * d, qr, i * width + s * d, d);
                }
            }
        }
        // key group j is keys [j·S, j·S + S) back to back: the flat keys, zero-padded to whole groups
        float[] kr = (long) kGroups * stride == nk ? k : Arrays.copyOf(k, kGroups * width);
        KeyPanels panels = KeyPanels.of(kr, kGroups, width);
        int padded = KeyPanels.paddedLength(kGroups);
        // query blocks are scored in passes of whole blocks, so that each key panel (S·d channels,
        // too wide for L1) is loaded once for many query groups
        int blocksPerPass = Math.max(1, GROUPS_PER_PASS / perBlock);
        float[] dots = new float[blocksPerPass * perBlock * padded];
        int[] counts = new int[blocksPerPass * perBlock];
        double[][] mass = new double[blocksPerPass][kBlocks];
        double[] p = new double[kGroups];
        double scale = 1.0 / Math.sqrt(d) / stride;
        long offset = ctx.queryOffset();
        for (int qb0 = 0; qb0 < qBlocks; qb0 += blocksPerPass) {
            int nBlocks = Math.min(blocksPerPass, qBlocks - qb0);
            int first = qb0 * perBlock;
            int rows = Math.min(nBlocks * perBlock, qGroups - first);
            int most = 0;
            for (int i = 0; i < rows; i++) {
                counts[i] = visibleGroups(ctx, first + i, kGroups, offset);
                most = Math.max(most, counts[i]);
            }
            if (most > 0) {
                panels.dots(qr, first, rows, most, dots, padded, counts);
            }
            for (double[] m : mass) {
                Arrays.fill(m, 0);
            }
            for (int i = 0; i < rows; i++) {
                int n = counts[i];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    p[j] = scale * dots[i * padded + j];
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                double[] m = mass[i / perBlock];
                for (int j0 = 0, jb = 0; j0 < n; j0 += perBlock, jb++) { // block by block: the same sums, no division per group
                    int j1 = Math.min(n, j0 + perBlock);
                    double acc = m[jb];
                    for (int j = j0; j < j1; j++) {
                        acc += p[j] / sum;
                    }
                    m[jb] = acc;
                }
            }
            for (int bi = 0; bi < nBlocks; bi++) {
                int qb = qb0 + bi;
                long firstPos = (long) qb * blockSize + offset;
                int diag = (int) Math.max(0, Math.min(kBlocks - 1, Math.floorDiv(firstPos, blockSize)));
                out[qb] = anyVisible(ctx, qb) ? keep(mass[bi], kBlocks, ctx.causal(), diag) : new int[0];
            }
        }
        return out;
    }

    /** Whether some row of query block {@code qb} may see a key. */
    private boolean anyVisible(PlanContext ctx, int qb) {
        int lastRow = (int) Math.min(ctx.queryLength() - 1L, ((long) qb + 1) * blockSize - 1);
        return !ctx.causal() || Plans.lastVisibleKey(ctx, lastRow) >= 0;
    }

    /**
     * Whether the antidiagonal score of the only query group and the only key group is finite: the
     * zero-padded product of the general case is a fused multiply-add chain whose padding terms add
     * nothing unless a value is infinite or NaN, so it is finite when every row present is finite and
     * the chain over the positions where both a query and a key are present is.
     */
    private boolean oneGroupFinite(float[] q, float[] k, int nq, int nk, int d) {
        for (int i = 0; i < nq * d; i++) {
            if (!Float.isFinite(q[i])) {
                return false;
            }
        }
        for (int i = 0; i < nk * d; i++) {
            if (!Float.isFinite(k[i])) {
                return false;
            }
        }
        float acc = 0;
        for (long s = Math.max(0, (long) stride - nq); s < nk; s++) {
            int qRow = (int) (stride - 1 - s);
            for (int x = 0; x < d; x++) {
                acc = Math.fma(q[qRow * d + x], k[(int) s * d + x], acc);
            }
        }
        return Float.isFinite(acc);
    }

    /** Visible key groups of query group {@code i}: {@code j·S ≤ i·S + offset}; all without causality. */
    private int visibleGroups(PlanContext ctx, int i, int kGroups, long offset) {
        if (!ctx.causal()) {
            return kGroups;
        }
        long last = Math.floorDiv((long) i * stride + offset, stride); // the last visible group
        return (int) Math.max(0, Math.min(kGroups, last + 1));
    }

    /** The threshold rule of the class comment on one query block's masses. */
    int[] keep(double[] mass, int kBlocks, boolean causal, int diag) {
        double total = 0;
        for (int j = 0; j < kBlocks; j++) {
            total += mass[j];
        }
        double required = total * threshold;
        boolean[] kept = new boolean[kBlocks];
        double forced = 0;
        int nForced = 0;
        if (causal) {
            kept[0] = true;
            kept[diag] = true;
            forced = diag == 0 ? mass[0] : mass[0] + mass[diag];
            nForced = diag == 0 ? 1 : 2;
        }
        Integer[] order = new Integer[kBlocks - nForced];
        for (int j = 0, m = 0; j < kBlocks; j++) {
            if (!kept[j]) {
                order[m++] = j;
            }
        }
        Arrays.sort(order, (a, b) -> mass[a] != mass[b] ? Double.compare(mass[b], mass[a]) : Integer.compare(a, b));
        double before = forced;
        for (int j : order) {
            double compared = nForced == 2 ? before + mass[j] : before;
            if (!(compared < required)) {
                break;
            }
            kept[j] = true;
            before += mass[j];
        }
        int n = 0;
        int[] out = new int[kBlocks];
        for (int j = 0; j < kBlocks; j++) {
            if (kept[j] && (!causal || j <= diag)) {
                out[n++] = j;
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** Antidiagonal scores: {@code Nq · Nk · headDim / stride} per slice, half when causal. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return (double) ctx.shape().slices() * ctx.queryLength() * ctx.keyLength() * ctx.shape().headDim() / stride
                * (ctx.causal() ? 0.5 : 1);
    }

    /**
     * The strided antidiagonal scores (vectorized panels) and the threshold selection: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch"): fitted 0.0435 at N 4096 on 2026-12-03, commit 17d89b4, where 0.04 had measured 1.09 of the estimate
     * (docs/perf-data/2026-12-03-17d89b4-epyc2vcpu-planning-cost-calibration.txt).
     */
    @Override
    public double costPerMac() {
        return 0.044;
    }
}
