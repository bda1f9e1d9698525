package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimatedSkeleton.i32;
import static dev.sparsa.cuda.EstimatedSkeleton.i64;
import static dev.sparsa.cuda.EstimatedSkeleton.launch;

import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;

/**
 * A {@link VerticalSlashEstimator} plan whose selection is estimated on the device: the skeleton of its
 * device plan ({@link DevicePlan}: layout descriptions, tile rows, work lists) is built on the host
 * from the shape and the budgets alone, and each call queues, on the call's stream and before the
 * attention kernel, the kernels of {@code sparsa_vs_estimate.cuh} that score the last query rows
 * against the keys, sum the probabilities along columns and diagonals, choose the best of each and
 * write every tile's full, partial and gathered lists in the estimator's {@link VsSemantics}; nothing is
 * copied back and the host does not wait. The selection is bit for bit the one {@link
 * VerticalSlashEstimator#select} makes (the canonical arithmetic of its Javadoc), and the lists are
 * those {@code VerticalSlash.layout} builds from it, so the device plan equals the one {@code plan}
 * builds on the host.
 *
 * <p>Capacities are fixed from the shape and the budgets: per slice the scores of the last rows
 * ({@code 64 × visible keys} floats), the column and diagonal scores, the chosen sets, and per tile
 * lists bounded by its visible keys and blocks.
 *
 * <p>Made by {@link CudaBackend#prepareEstimated(VerticalSlashEstimator, PlanContext,
 * dev.sparsa.tensor.Device)}, run by {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor,
 * Tensor, Tensor, Tensor, dev.sparsa.spec.RunOptions)} and {@link
 * CudaBackend#forwardAsync(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
 * dev.sparsa.spec.RunOptions, CudaStream)} on device tensors. Its device memory is reused by every
 * call, so calls with one plan must be ordered on one stream (or waited for in between). Closing it
 * frees that memory; one collected unclosed is freed by a cleaner.
 */
public final class CudaVsEstimatedPlan extends CudaDeviceEstimatedPlan {
    /** The scores kernel holds this many scored rows. */
    static final int MAX_LAST_QUERIES = 64;

    private final VerticalSlashEstimator estimator;
    private final int tiles;
    private final int header;
    private final long sliceStride;
    private final long capFull;
    private final long capPart;
    private final int last;
    private final int most;
    private final int nDiag;
    private final long oMin;
    private final int capV;
    private final int capS;
    private final long ldx;

    private static final int X = 0;
    private static final int ROW_MAX = 1;
    private static final int ROW_SUM = 2;
    private static final int VERT = 3;
    private static final int SLASH = 4;
    private static final int COLS = 5;
    private static final int DIAGS = 6;
    private static final int COUNTS = 7;

    /**
     * Why the device estimate does not run this estimator in this context (the host plans it then), or
     * null: {@link VsSemantics#EXACT} (its per-row diagonal keys are left to the host), more than
     * {@value #MAX_LAST_QUERIES} scored rows, a base predicate other than causal or none, more than
     * 65535 (batch, head) slices, an empty sequence, or lists beyond 2³¹ ints.
     */
    public static String refusal(VerticalSlashEstimator estimator, PlanContext ctx) {
        if (estimator == null || ctx == null) {
            return "estimator and context: must not be null";
        }
        if (estimator.semantics() == VsSemantics.EXACT) {
            return "semantics EXACT: its token-exact diagonals are planned on the host";
        }
        if (estimator.lastQueries() > MAX_LAST_QUERIES) {
            return "lastQueries " + estimator.lastQueries() + ": the device estimate scores at most " + MAX_LAST_QUERIES;
        }
        ElementPredicate p = ctx.basePredicate();
        if (!p.equals(ElementPredicate.all()) && !p.equals(ElementPredicate.causalOnly())) {
            return "predicate " + p + ": the device estimate builds causal or unmasked lists only";
        }
        AttentionShape s = ctx.shape();
        if ((long) s.batch() * s.qHeads() > 65535) {
            return s.batch() * (long) s.qHeads() + " slices: the device estimate takes at most 65535";
        }
        if (s.queryLength() == 0 || s.keyLength() == 0) {
            return "an empty sequence: nothing to estimate";
        }
        long ints = sizes(estimator, ctx)[0];
        if (ints > Integer.MAX_VALUE) {
            return "shape " + s + ": the estimated plan's " + ints + " ints exceed " + Integer.MAX_VALUE;
        }
        return null;
    }

    /**
     * {total ints of the pool, ints per slice, full capacity, partial capacity, gather capacity (per
     * slice)}: each tile's lists bounded by its visible keys and blocks, the gathered keys also by the
     * columns plus two ragged ends of {@code blockCols − 1} keys per range (block-expanded).
     */
    private static long[] sizes(VerticalSlashEstimator est, PlanContext ctx) {
        AttentionShape s = ctx.shape();
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nq = s.queryLength();
        int nk = s.keyLength();
        int tiles = (nq + rows - 1) / rows;
        long[] vs = budgets(est, ctx);
        long ragged = est.semantics() == VsSemantics.BLOCK_EXPANDED ? 2L * (cols - 1) * vs[1] : 0;
        long full = 0;
        long part = 0;
        long gath = 0;
        for (int t = 0; t < tiles; t++) {
            int count = Math.min(rows, nq - t * rows);
            long visible = Math.max(0, Math.min(nk, lastVisibleKey(ctx, t * rows + count - 1) + 1));
            long blocks = (visible + cols - 1) / cols;
            full += blocks;
            part += ctx.causal() ? Math.min(blocks, (count - 1) / cols + 2) : 0;
            gath += Math.min(visible, vs[0] + ragged);
        }
        long stride = 3L * (tiles + 1) + full + part + gath;
        long total = EstimatedSkeleton.headerInts(s.batch() * s.qHeads(), tiles) + stride * s.batch() * s.qHeads();
        return new long[] {total, stride, full, part, gath};
    }

    /** {capacity of the columns, capacity of the diagonals}: the budgets capped at what exists. */
    private static long[] budgets(VerticalSlashEstimator est, PlanContext ctx) {
        int last = Math.min(est.lastQueries(), ctx.queryLength());
        long most = Math.max(0, Math.min(ctx.keyLength(), lastVisibleKey(ctx, ctx.queryLength() - 1) + 1));
        long nDiag = (long) last + ctx.keyLength() - 1;
        long v = Math.min(most, Math.max(est.verticalBudget(), VerticalSlashEstimator.MIN_COLUMNS));
        long d = Math.min(nDiag, Math.max(est.slashBudget(), VerticalSlashEstimator.MIN_DIAGONALS));
        return new long[] {Math.max(1, v), Math.max(1, d)};
    }

    /**
     * Builds the skeleton on {@code rt}'s device, with work lists for CTAs of each of {@code rowsPerCta}.
     * Throws {@link IllegalArgumentException} with the {@link #refusal} when there is one.
     */
    CudaVsEstimatedPlan(VerticalSlashEstimator estimator, PlanContext ctx, CudaRuntime rt, int... rowsPerCta) {
        String why = refusal(estimator, ctx);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        super(ctx, rt);
        this.estimator = estimator;
        CudaDevice dev = rt.device();
        AttentionShape s = ctx.shape();
        int nq = s.queryLength();
        int nk = s.keyLength();
        int rows = ctx.geometry().tileRows();
        int slices = s.batch() * s.qHeads();
        this.tiles = (nq + rows - 1) / rows;
        this.last = Math.min(estimator.lastQueries(), nq);
        this.most = (int) Math.max(0, Math.min(nk, lastVisibleKey(ctx, nq - 1) + 1));
        this.nDiag = last + nk - 1;
        this.oMin = (long) (nq - last) + ctx.queryOffset() - (nk - 1);
        long[] b = budgets(estimator, ctx);
        this.capV = (int) b[0];
        this.capS = (int) b[1];
        long[] z = sizes(estimator, ctx);
        this.sliceStride = z[1];
        this.capFull = z[2];
        this.capPart = z[3];
        long capGather = z[4];
        this.header = EstimatedSkeleton.headerInts(slices, tiles);
        this.ldx = Math.max(32, (most + 31L) / 32 * 32);
        int[] head = EstimatedSkeleton.header(ctx, slices, tiles);
        for (int l = 0; l < slices; l++) {
            int at = l * LI_STRIDE;
            int mine = (int) (header + l * sliceStride);
            head[at + LI_FULL_OFFSETS] = mine;
            head[at + LI_PARTIAL_OFFSETS] = mine + tiles + 1;
            head[at + LI_GATHER_OFFSETS] = mine + 2 * (tiles + 1);
            head[at + LI_FULL_BLOCKS] = mine + 3 * (tiles + 1);
            head[at + LI_PARTIAL_BLOCKS] = (int) (mine + 3L * (tiles + 1) + capFull);
            head[at + LI_GATHER_KEYS] = (int) (mine + 3L * (tiles + 1) + capFull + capPart);
        }
        DevicePlan dp = null;
        DeviceBuffer[] scratch = new DeviceBuffer[COUNTS + 1];
        List<DevicePlan.WorkList> lists = new ArrayList<>();
        DeviceBuffer ints = null;
        DeviceBuffer floats = null;
        try {
            dev.makeCurrent();
            ints = new DeviceBuffer(dev, 4L * z[0]);
            ints.copyFrom(head);
            // the gathered keys' log-weights: zeros, shared by every slice
            floats = new DeviceBuffer(dev, 4L * Math.max(1, capGather));
            floats.fill((byte) 0);
            for (int rr : rowsPerCta) {
                if (lists.stream().noneMatch(w -> w.rows() == rr)) {
                    lists.add(DevicePlan.upload(dev, rr, workItems(rr)));
                }
            }
            // the plan owns the pools and the work lists from here on, and closes them if it fails
            DeviceBuffer i0 = ints;
            DeviceBuffer f0 = floats;
            List<DevicePlan.WorkList> l0 = new ArrayList<>(lists);
            ints = null;
            floats = null;
            lists.clear();
            dp = new DevicePlan(dev, i0, f0, l0);
            long rowsAll = (long) slices * MAX_LAST_QUERIES;
            scratch[X] = new DeviceBuffer(dev, 4L * rowsAll * ldx);
            scratch[ROW_MAX] = new DeviceBuffer(dev, 4L * rowsAll);
            scratch[ROW_SUM] = new DeviceBuffer(dev, 8L * rowsAll);
            scratch[VERT] = new DeviceBuffer(dev, 4L * slices * ldx);
            scratch[SLASH] = new DeviceBuffer(dev, 4L * slices * Math.max(1, nDiag));
            scratch[COLS] = new DeviceBuffer(dev, 4L * slices * capV);
            scratch[DIAGS] = new DeviceBuffer(dev, 4L * slices * capS);
            scratch[COUNTS] = new DeviceBuffer(dev, 8L * slices);
        } catch (RuntimeException | Error e) {
            EstimateMemory.abandon(dp, ints, floats, lists, scratch);
            throw e;
        }
        own(new EstimateMemory(dp, scratch));
    }

    /**
     * The work items for CTAs of {@code rows} query rows: every tile of every slice, those with more
     * visible key blocks first (the lists' sizes are known only on the device; the visible blocks
     * bound them).
     */
    private int[] workItems(int rows) {
        int tileRows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        return tileWork(ctx, rows, t -> {
            long lastKey = lastVisibleKey(ctx, Math.min(nq, (long) (t + 1) * tileRows) - 1);
            return lastKey < 0 ? 0 : lastKey / cols + 1;
        });
    }

    /** The estimator. */
    public VerticalSlashEstimator estimator() {
        return estimator;
    }

    /** The estimator, as {@link #estimator()}. */
    @Override
    public VerticalSlashEstimator pattern() {
        return estimator;
    }

    /**
     * Queues the estimate on {@code stream}: scores, row statistics, column and diagonal sums, the
     * choice, the lists. Q and K are device tensors of the context's shape (checked by the caller).
     */
    @Override
    synchronized void queueEstimate(Tensor q, Tensor k, CudaStream stream) {
        AttentionShape s = ctx.shape();
        CudaModule mod = runtime().module();
        int d = s.headDim();
        int slices = s.batch() * s.qHeads();
        int nq = s.queryLength();
        int nk = s.keyLength();
        int r0 = nq - last;
        int causal = ctx.causal() ? 1 : 0;
        int off = ctx.queryOffset();
        float scale = (float) (Double.isNaN(estimator.scale()) ? 1.0 / Math.sqrt(d) : estimator.scale());
        Pointer x = Pointer.to(memory().buffer(X).pointer());
        Pointer rowMax = Pointer.to(memory().buffer(ROW_MAX).pointer());
        Pointer rowSum = Pointer.to(memory().buffer(ROW_SUM).pointer());
        Pointer vert = Pointer.to(memory().buffer(VERT).pointer());
        Pointer slash = Pointer.to(memory().buffer(SLASH).pointer());
        Pointer cols = Pointer.to(memory().buffer(COLS).pointer());
        Pointer diags = Pointer.to(memory().buffer(DIAGS).pointer());
        Pointer counts = Pointer.to(memory().buffer(COUNTS).pointer());
        launch(mod.function("sparsa_vs_scores", 0), Math.max(1, (most + 127) / 128), slices, 1, 256, 0, stream,
                "sparsa_vs_scores", Pointer.to(CudaTensors.buffer("q", q).pointer(q.byteOffset())),
                Pointer.to(CudaTensors.buffer("k", k).pointer(k.byteOffset())), i32(outKind(q.dtype())),
                i64(q.stride(0)), i64(q.stride(1)), i64(q.stride(2)), i64(k.stride(0)), i64(k.stride(1)),
                i64(k.stride(2)), i32(s.qHeads()), i32(s.groupSize()), i32(r0), i32(last), i32(most), i32(d),
                Pointer.to(new float[] {scale}), x, i64(ldx));
        launch(mod.function("sparsa_vs_rows", 0), last, slices, 1, 32, 0, stream, "sparsa_vs_rows", x, i64(ldx),
                i32(r0), i32(nk), i32(causal), i32(off), rowMax, rowSum);
        launch(mod.function("sparsa_vs_sums", 0), (Math.max(most, nDiag) + 255) / 256, slices, 1, 256, 0, stream,
                "sparsa_vs_sums", x, i64(ldx), rowSum, i32(r0), i32(last), i32(most), i32(nDiag), i64(oMin),
                i32(nk), i32(causal), i32(off), vert, slash, i64(Math.max(1, nDiag)));
        launch(mod.function("sparsa_vs_top", 0), 2, slices, 1, 1024, 0, stream, "sparsa_vs_top", vert, i64(ldx),
                slash, i64(Math.max(1, nDiag)), i32(most), i32(nDiag), i64(oMin), i32(causal),
                i32(Math.max(estimator.verticalBudget(), VerticalSlashEstimator.MIN_COLUMNS)),
                i32(Math.max(estimator.slashBudget(), VerticalSlashEstimator.MIN_DIAGONALS)), cols, i32(capV), diags,
                i32(capS), counts);
        int mode = estimator.semantics() == VsSemantics.BLOCK_EXPANDED ? 0 : 1;
        // each tile's counts (one warp per tile), the offsets, then the lists
        for (int write = 0; write <= 1; write++) {
            launch(mod.function("sparsa_vs_emit", 0), (tiles + 7) / 8, slices, 1, 256, 0, stream, "sparsa_vs_emit", cols,
                    i32(capV), diags, i32(capS), counts, i32(mode), i32(tiles), i32(ctx.geometry().tileRows()),
                    i32(ctx.geometry().blockCols()), i32(nq), i32(nk), i32(causal), i32(off),
                    Pointer.to(memory().plan().ints().pointer()), i64(header), i64(sliceStride), i64(capFull), i64(capPart),
                    i32(write));
            if (write == 0) {
                launch(mod.function("sparsa_vs_offsets", 0), slices, 1, 1, 1024, 0, stream, "sparsa_vs_offsets",
                        i32(tiles), Pointer.to(memory().plan().ints().pointer()), i64(header), i64(sliceStride));
            }
        }
    }

    /**
     * The selection of {@code slice} (batch · qHeads + head) as the device last wrote it, in the form
     * of {@link VerticalSlashEstimator#select}. Copies synchronously; for tests.
     */
    VerticalSlashEstimator.Selection selection(int slice) {
        int[] n = memory().buffer(COUNTS).readInts(8L * slice, 2);
        int[] c = memory().buffer(COLS).readInts(4L * slice * capV, n[0]);
        int[] g = memory().buffer(DIAGS).readInts(4L * slice * capS, n[1]);
        return new VerticalSlashEstimator.Selection(c, g);
    }

    /**
     * The lists of {@code slice} as the device last wrote them: {full offsets, full blocks, partial
     * offsets, partial blocks, gather offsets, gathered keys}, in the form of {@link
     * dev.sparsa.plan.HeadLayout}'s arrays. Copies synchronously; for tests.
     */
    int[][] lists(int slice) {
        DeviceBuffer ints = memory().plan().ints();
        long at = 4L * (header + slice * sliceStride);
        int[] fo = ints.readInts(at, tiles + 1);
        int[] po = ints.readInts(at + 4L * (tiles + 1), tiles + 1);
        int[] go = ints.readInts(at + 8L * (tiles + 1), tiles + 1);
        long blocks = at + 12L * (tiles + 1);
        int[] fb = ints.readInts(blocks, fo[tiles]);
        int[] pb = ints.readInts(blocks + 4L * capFull, po[tiles]);
        int[] gk = ints.readInts(blocks + 4L * (capFull + capPart), go[tiles]);
        return new int[][] {fo, fb, po, pb, go, gk};
    }

    @Override
    public String toString() {
        return "CudaVsEstimatedPlan(" + estimator.name() + ", " + ctx.shape() + ", " + Arrays.toString(new int[] {capV, capS})
                + ")";
    }

    /**
     * At most {@code max(verticalBudget, 30)} columns and {@code max(slashBudget, 50)} diagonals per
     * query tile, each diagonal a run of at most twice the tile's rows plus a block of keys (merged
     * or grid-aligned).
     */
    @Override
    public double visitedFractionBound() {
        return visitedFractionBound(estimator, ctx);
    }

    /** {@link #visitedFractionBound()} of the plan this estimator and context would make, known before one is made. */
    static double visitedFractionBound(VerticalSlashEstimator estimator, PlanContext ctx) {
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        long columns = Math.max(estimator.verticalBudget(), VerticalSlashEstimator.MIN_COLUMNS);
        long diagonals = Math.max(estimator.slashBudget(), VerticalSlashEstimator.MIN_DIAGONALS);
        return keptFraction(ctx, rows, columns + diagonals * (2L * rows + cols));
    }

    @Override
    String kernels() {
        return "sparsa_vs_scores+sparsa_vs_rows+sparsa_vs_sums+sparsa_vs_top+sparsa_vs_emit+sparsa_vs_offsets";
    }

}
