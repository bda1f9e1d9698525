package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;

import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUfunction;

/**
 * A {@link MeanPoolBlockTopK} plan whose selection is estimated on the device: the skeleton of its
 * device plan ({@link DevicePlan}: layout descriptions, tile rows, work lists) is built on the host
 * from the shape alone, and each call queues, on the call's stream and before the attention kernel,
 * the kernels of {@code sparsa_estimate.cuh} that mean-pool Q and K, choose each query block's key
 * blocks and write the plan's full and partial block lists; nothing is copied back and the host does
 * not wait. The selection is bit for bit the one {@link MeanPoolBlockTopK#select} makes (the
 * canonical arithmetic of its Javadoc), so the device plan equals the one {@code plan} builds on the
 * host.
 *
 * <p>Made by {@link CudaBackend#prepareEstimated}, run by {@link CudaBackend#forward(CudaDeviceEstimatedPlan,
 * Tensor, Tensor, Tensor, Tensor, Tensor, dev.sparsa.spec.RunOptions)} and {@link
 * CudaBackend#forwardAsync(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
 * dev.sparsa.spec.RunOptions, CudaStream)} on device tensors. Its device memory (the plan, the pooled
 * vectors and the selections, sized by the shape) is reused by every call, so calls with one plan
 * must be ordered on one stream (or waited for in between). Closing it frees that memory; one
 * collected unclosed is freed by a cleaner.
 */
public final class CudaEstimatedPlan extends CudaDeviceEstimatedPlan {
    /** The selection kernel sorts a query block's candidates in shared memory: at most this many key blocks. */
    static final int MAX_KEY_BLOCKS = 4096;

    private final MeanPoolBlockTopK pattern;
    private final int tiles;
    private final int qBlocks;
    private final int kBlocks;
    private final int cap;
    private final int capFull;
    private final int header;
    private final int sliceStride;

    // the scratch buffers after the device plan
    private static final int POOLED_Q = 0;
    private static final int POOLED_K = 1;
    private static final int SEL = 2;
    private static final int SEL_COUNT = 3;

    /**
     * Why the device estimate does not run this pattern in this context (the host plans it then), or
     * null: the geometry's tile rows must equal its block columns, the pattern's block size must be a
     * multiple of them, under causality the query offset must be a non-negative multiple of them (and
     * the last tile must see every key or be whole), there may be at most {@value #MAX_KEY_BLOCKS} key
     * blocks and 65535 (batch, head) slices.
     */
    public static String refusal(MeanPoolBlockTopK pattern, PlanContext ctx) {
        if (pattern == null || ctx == null) {
            return "pattern and context: must not be null";
        }
        TileGeometry g = ctx.geometry();
        int cols = g.blockCols();
        int bs = pattern.blockSize();
        AttentionShape s = ctx.shape();
        if (g.tileRows() != cols) {
            return "geometry " + g + ": the device estimate needs square tiles";
        }
        if (bs % cols != 0) {
            return "blockSize " + bs + ": the device estimate needs a multiple of the geometry's " + cols + " columns";
        }
        if (ctx.causal()) {
            int off = ctx.queryOffset();
            if (off < 0 || off % cols != 0) {
                return "queryOffset " + off + ": the device estimate needs a non-negative multiple of " + cols;
            }
            if (s.queryLength() % cols != 0 && (long) s.queryLength() + off < s.keyLength()) {
                return "queryOffset " + off + ": the last (short) tile would see part of a key block";
            }
        }
        long kb = (s.keyLength() + (long) bs - 1) / bs;
        if (kb > MAX_KEY_BLOCKS) {
            return kb + " key blocks: the device estimate takes at most " + MAX_KEY_BLOCKS;
        }
        if ((long) s.batch() * s.qHeads() > 65535) {
            return s.batch() * (long) s.qHeads() + " slices: the device estimate takes at most 65535";
        }
        if (s.queryLength() == 0 || s.keyLength() == 0) {
            return "an empty sequence: nothing to estimate";
        }
        return null;
    }

    /**
     * Builds the skeleton on {@code rt}'s device, with work lists for CTAs of each of {@code rowsPerCta}.
     * Throws {@link IllegalArgumentException} with the {@link #refusal} when there is one.
     */
    CudaEstimatedPlan(MeanPoolBlockTopK pattern, PlanContext ctx, CudaRuntime rt, int... rowsPerCta) {
        String why = refusal(pattern, ctx);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        super(ctx, rt);
        this.pattern = pattern;
        CudaDevice dev = rt.device();
        AttentionShape s = ctx.shape();
        int nq = s.queryLength();
        int nk = s.keyLength();
        int bs = pattern.blockSize();
        int rows = ctx.geometry().tileRows();
        int m = bs / ctx.geometry().blockCols();
        int slices = s.batch() * s.qHeads();
        this.tiles = (nq + rows - 1) / rows;
        this.qBlocks = (nq + bs - 1) / bs;
        this.kBlocks = (nk + bs - 1) / bs;
        this.cap = Math.min(kBlocks, pattern.topBlocks() + (pattern.keepDiagonal() ? 1 : 0));
        this.capFull = cap * m;
        // the int pool: layout descriptions, the shared row arrays, then each slice's block lists
        this.header = EstimatedSkeleton.headerInts(slices, tiles);
        long stride = 2L * (tiles + 1) + (long) tiles * capFull + tiles;
        long total = header + stride * slices;
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("shape " + s + ": the estimated plan's " + total + " ints exceed "
                    + Integer.MAX_VALUE);
        }
        this.sliceStride = (int) stride;
        int[] head = EstimatedSkeleton.header(ctx, slices, tiles);
        for (int l = 0; l < slices; l++) {
            int at = l * LI_STRIDE;
            int mine = header + l * sliceStride;
            head[at + LI_FULL_OFFSETS] = mine;
            head[at + LI_PARTIAL_OFFSETS] = mine + tiles + 1;
            head[at + LI_FULL_BLOCKS] = mine + 2 * (tiles + 1);
            head[at + LI_PARTIAL_BLOCKS] = mine + 2 * (tiles + 1) + tiles * capFull;
        }
        DeviceBuffer ints = null;
        DeviceBuffer floats = null;
        List<DevicePlan.WorkList> lists = new ArrayList<>();
        DevicePlan dp = null;
        DeviceBuffer pq = null;
        DeviceBuffer pk = null;
        DeviceBuffer sel = null;
        DeviceBuffer cnt = null;
        try {
            dev.makeCurrent();
            ints = new DeviceBuffer(dev, 4L * total);
            ints.copyFrom(head);
            floats = new DeviceBuffer(dev, 4L);
            floats.copyFrom(new float[1]);
            for (int r : rowsPerCta) {
                if (lists.stream().noneMatch(w -> w.rows() == r)) {
                    lists.add(DevicePlan.upload(dev, r, workItems(r)));
                }
            }
            dp = new DevicePlan(dev, ints, floats, lists);
            int d = s.headDim();
            pq = new DeviceBuffer(dev, 4L * slices * qBlocks * d);
            pk = new DeviceBuffer(dev, 4L * s.batch() * s.kvHeads() * kBlocks * d);
            sel = new DeviceBuffer(dev, 4L * slices * qBlocks * cap);
            cnt = new DeviceBuffer(dev, 4L * slices * qBlocks);
        } catch (RuntimeException | Error e) {
            EstimateMemory.abandon(dp, ints, floats, lists, pq, pk, sel, cnt);
            throw e;
        }
        own(new EstimateMemory(dp, pq, pk, sel, cnt));
    }

    /**
     * The work items for CTAs of {@code rows} query rows: every tile of every slice, those with more
     * candidate blocks first (the selection's size is known only on the device; a query block's
     * candidates bound it).
     */
    private int[] workItems(int rows) {
        int tileRows = ctx.geometry().tileRows();
        int bs = pattern.blockSize();
        int nq = ctx.queryLength();
        return tileWork(ctx, rows, t -> {
            long lastKey = lastVisibleKey(ctx, Math.min(nq, ((long) t * tileRows / bs + 1) * bs) - 1);
            return lastKey < 0 ? 0 : Math.min(cap, Math.min(kBlocks, lastKey / bs + 1));
        });
    }

    /** The pattern estimated. */
    @Override
    public MeanPoolBlockTopK pattern() {
        return pattern;
    }

    /**
     * Queues the estimate on {@code stream}: pooling of Q and K, the selection, the block lists. Q
     * and K are device tensors of the context's shape (checked by the caller).
     */
    @Override
    synchronized void queueEstimate(Tensor q, Tensor k, CudaStream stream) {
        AttentionShape s = ctx.shape();
        CudaModule mod = runtime().module();
        int d = s.headDim();
        int bs = pattern.blockSize();
        int kind = outKind(q.dtype());
        int poolThreads = Math.min(256, (d + 31) / 32 * 32);
        CUfunction pool = mod.function("sparsa_est_pool", 0);
        launch(pool, qBlocks, s.qHeads(), s.batch(), poolThreads, 0, stream, "sparsa_est_pool",
                Pointer.to(CudaTensors.buffer("q", q).pointer(q.byteOffset())), Pointer.to(new int[] {kind}),
                Pointer.to(new long[] {q.stride(0)}), Pointer.to(new long[] {q.stride(1)}), Pointer.to(new long[] {q.stride(2)}),
                Pointer.to(new int[] {s.qHeads()}), Pointer.to(new int[] {s.queryLength()}), Pointer.to(new int[] {d}),
                Pointer.to(new int[] {bs}), Pointer.to(new int[] {qBlocks}), Pointer.to(new int[] {0}),
                Pointer.to(memory().buffer(POOLED_Q).pointer()));
        launch(pool, kBlocks, s.kvHeads(), s.batch(), poolThreads, 0, stream, "sparsa_est_pool",
                Pointer.to(CudaTensors.buffer("k", k).pointer(k.byteOffset())), Pointer.to(new int[] {kind}),
                Pointer.to(new long[] {k.stride(0)}), Pointer.to(new long[] {k.stride(1)}), Pointer.to(new long[] {k.stride(2)}),
                Pointer.to(new int[] {s.kvHeads()}), Pointer.to(new int[] {s.keyLength()}), Pointer.to(new int[] {d}),
                Pointer.to(new int[] {bs}), Pointer.to(new int[] {kBlocks}), Pointer.to(new int[] {1}),
                Pointer.to(memory().buffer(POOLED_K).pointer()));
        int sortLen = Integer.highestOneBit(Math.max(1, kBlocks - 1)) << 1;
        int words = (kBlocks + 31) / 32;
        int smem = (d * 4 + 15) / 16 * 16 + 8 * sortLen + 4 * (2 * words + 1);
        int slices = s.batch() * s.qHeads();
        launch(mod.function("sparsa_est_select", 0), qBlocks, slices, 1, 256, smem, stream, "sparsa_est_select",
                Pointer.to(memory().buffer(POOLED_Q).pointer()), Pointer.to(memory().buffer(POOLED_K).pointer()), Pointer.to(new int[] {s.qHeads()}),
                Pointer.to(new int[] {s.groupSize()}), Pointer.to(new int[] {qBlocks}), Pointer.to(new int[] {kBlocks}),
                Pointer.to(new int[] {d}), Pointer.to(new int[] {s.queryLength()}), Pointer.to(new int[] {s.keyLength()}),
                Pointer.to(new int[] {bs}), Pointer.to(new int[] {ctx.causal() ? 1 : 0}),
                Pointer.to(new int[] {ctx.queryOffset()}), Pointer.to(new int[] {pattern.topBlocks()}),
                Pointer.to(new int[] {pattern.keepDiagonal() ? 1 : 0}), Pointer.to(new int[] {cap}),
                Pointer.to(new int[] {sortLen}), Pointer.to(memory().buffer(SEL).pointer()), Pointer.to(memory().buffer(SEL_COUNT).pointer()));
        int cols = ctx.geometry().blockCols();
        int rows = ctx.geometry().tileRows();
        launch(mod.function("sparsa_est_emit", 0), slices, 1, 1, 512, 0, stream, "sparsa_est_emit",
                Pointer.to(memory().buffer(SEL).pointer()), Pointer.to(memory().buffer(SEL_COUNT).pointer()), Pointer.to(new int[] {cap}),
                Pointer.to(new int[] {qBlocks}), Pointer.to(new int[] {tiles}), Pointer.to(new int[] {rows}),
                Pointer.to(new int[] {cols}), Pointer.to(new int[] {bs / cols}), Pointer.to(new int[] {bs / rows}),
                Pointer.to(new int[] {s.queryLength()}), Pointer.to(new int[] {s.keyLength()}),
                Pointer.to(new int[] {ctx.causal() ? 1 : 0}), Pointer.to(new int[] {ctx.queryOffset()}),
                Pointer.to(memory().plan().ints().pointer()), Pointer.to(new long[] {header}),
                Pointer.to(new long[] {sliceStride}), Pointer.to(new int[] {capFull}));
    }

    static void launch(CUfunction f, int gx, int gy, int gz, int threads, int smem, CudaStream stream,
                               String name, Pointer... params) {
        EstimatedSkeleton.launch(f, gx, gy, gz, threads, smem, stream, name, params);
    }

    /**
     * The selection of {@code slice} (batch · qHeads + head) as the device last wrote it: per query
     * block, its ascending key blocks (the form of {@link MeanPoolBlockTopK#select}). Copies
     * synchronously; for tests.
     */
    int[][] selection(int slice) {
        int[] counts = memory().buffer(SEL_COUNT).readInts(4L * slice * qBlocks, qBlocks);
        int[] all = memory().buffer(SEL).readInts(4L * slice * qBlocks * cap, qBlocks * cap);
        int[][] out = new int[qBlocks][];
        for (int i = 0; i < qBlocks; i++) {
            out[i] = Arrays.copyOfRange(all, i * cap, i * cap + counts[i]);
        }
        return out;
    }

    /**
     * The block lists of {@code slice} as the device last wrote them: {full offsets, full blocks,
     * partial offsets, partial blocks}, in the form of {@link dev.sparsa.plan.HeadLayout}'s arrays.
     * Copies synchronously; for tests.
     */
    int[][] blockLists(int slice) {
        DeviceBuffer ints = memory().plan().ints();
        long at = 4L * (header + (long) slice * sliceStride);
        int[] fo = ints.readInts(at, tiles + 1);
        int[] po = ints.readInts(at + 4L * (tiles + 1), tiles + 1);
        int[] fbAll = ints.readInts(at + 8L * (tiles + 1), tiles * capFull);
        int[] pbAll = ints.readInts(at + 8L * (tiles + 1) + 4L * tiles * capFull, tiles);
        return new int[][] {fo, Arrays.copyOf(fbAll, fo[tiles]), po, Arrays.copyOf(pbAll, po[tiles])};
    }

    /** At most {@code topBlocks} (+ the diagonal) blocks of {@code blockSize} keys per query block. */
    @Override
    public double visitedFractionBound() {
        return visitedFractionBound(pattern, ctx);
    }

    /** {@link #visitedFractionBound()} of the plan this pattern and context would make, known before one is made. */
    static double visitedFractionBound(MeanPoolBlockTopK pattern, PlanContext ctx) {
        long kBlocks = (ctx.keyLength() + pattern.blockSize() - 1) / pattern.blockSize();
        long cap = Math.min(kBlocks, pattern.topBlocks() + (pattern.keepDiagonal() ? 1 : 0));
        return keptFraction(ctx, pattern.blockSize(), cap * pattern.blockSize());
    }

    @Override
    String kernels() {
        return "sparsa_est_pool+sparsa_est_select+sparsa_est_emit";
    }

}
