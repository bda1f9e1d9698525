package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;

import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;

/**
 * A {@link TopKPerQueryBlock} plan with pooled scoring whose selection is estimated on the device: the
 * skeleton of its device plan ({@link DevicePlan}: layout descriptions, tile rows, work lists, room
 * for each tile's lists) is built on the host from the shape alone, and each call queues, on the
 * call's stream and before the attention kernel, the kernels of {@code sparsa_topk_estimate.cuh}:
 * {@code sparsa_tk_mean} (each query tile's mean query, f32); per chunk of tile groups, {@code
 * sparsa_tk_scores} (per group of {@value #SCORE_TILES} consecutive query tiles of one slice: their
 * means against each tile of 128 keys loaded once into shared memory, as order keys into a scratch
 * row per query tile, for the keys the tile's last row may see) and {@code sparsa_tk_rank} (per query
 * tile: the forced keys of its rows set aside, the top {@code k}, ties to the lower key); then the
 * layout {@code SharedKeySetLayout} builds from that selection (the band's and the sinks' blocks under
 * the predicate, a block where a selected key lies outside the predicate written key by key, the
 * other selected keys unconditional), in three kernels: {@code sparsa_tk_emit_counts} (a warp per
 * query tile, its lanes side by side over the tile's selected keys and candidate blocks: the sizes of
 * its four lists), {@code sparsa_tk_emit_offsets} (per slice, the offsets by a prefix sum over the
 * tiles) and {@code sparsa_tk_emit_tiles} (a warp per query tile: its lists at its offsets, in {@code
 * tkTileLists}' order); their grid is {@link #emitTilesBlocks} CTAs of {@value #EMIT_TILES_PER_CTA}
 * warps. The scratch holds one chunk's tiles of {@code keys} order keys each, at most {@value
 * CudaTopKQueryEstimatedPlan#SCRATCH_BYTES} bytes (at least one tile group), so longer problems take
 * more chunks ({@link #chunkUnits}). Nothing is copied back and the host does not wait. The
 * selection is bit for bit the one {@link TopKPerQueryBlock#select} makes (the canonical arithmetic
 * of its Javadoc), and the device layout has the host plan's block and key lists, so attention over
 * it gives the host-planned bits.
 *
 * <p>Made by {@link CudaBackend#prepareEstimated(TopKPerQueryBlock, PlanContext,
 * dev.sparsa.tensor.Device)}, run by {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor,
 * Tensor, Tensor, Tensor, dev.sparsa.spec.RunOptions)} and {@link
 * CudaBackend#forwardAsync(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
 * dev.sparsa.spec.RunOptions, CudaStream)} on device tensors. Its device memory (the plan with room
 * for {@code k} unconditional keys and the window's blocks per tile, the mean queries, the
 * selections, the scores' scratch) is reused by every call, so calls with one plan must be ordered
 * on one stream (or waited for in between). Closing it frees that memory; one collected unclosed is
 * freed by a cleaner.
 */
public final class CudaTopKEstimatedPlan extends CudaDeviceEstimatedPlan {
    /** Threads of the ranking kernels ({@code sparsa_tk_rank}, {@code sparsa_tq_rank}: one key each per pass). */
    static final int SELECT_THREADS = 512;
    /**
     * An upper bound on the static shared memory of the kernels that rank ({@code sparsa_tk_rank},
     * {@code sparsa_tq_rank}: the histogram and scan arrays of {@code
     * tkRankOrders}).
     */
    static final int SELECT_STATIC_SHARED = 15392;
    /** The ranking keeps a tile's candidates' order keys in shared memory: at most this many keys. */
    static final int MAX_KEYS = 53248;
    /** Query tiles whose mean queries are scored together against each key tile ({@code TQ_ROWS}). */
    static final int SCORE_TILES = CudaTopKQueryEstimatedPlan.SCORE_ROWS;
    /** The layout kernel tracks a tile's sink and band blocks in one 64-bit mask: at most this many. */
    static final int MAX_WINDOW_BLOCKS = 64;

    private final TopKPerQueryBlock pattern;
    // the scratch buffers after the device plan
    private static final int MEANS = 0;
    private static final int SEL = 1;
    private static final int SEL_COUNT = 2;
    private static final int SCRATCH = 3;
    private final int tiles;
    private final int cap;
    private final int capB;
    private final int capG;
    private final int header;
    private final int sliceStride;
    private final int selectShared;
    private final int scoreShared;
    private final long unitsTotal;
    private final long chunk;

    /**
     * Why the device estimate does not run this pattern in this context (the host plans it then), or
     * null: the scoring must be {@link TopKPerQueryBlock.Scoring#POOLED_QUERY}, the window at least one
     * tile of rows (shorter ones leave the host layout to the token-set encoder), a tile's sink and
     * window blocks at most {@value #MAX_WINDOW_BLOCKS}, at most {@value #MAX_KEYS} keys, 65535
     * (batch, head) slices, and neither sequence empty.
     */
    public static String refusal(TopKPerQueryBlock pattern, PlanContext ctx) {
        if (pattern == null || ctx == null) {
            return "pattern and context: must not be null";
        }
        if (pattern.scoring() != TopKPerQueryBlock.Scoring.POOLED_QUERY) {
            return "scoring " + pattern.scoring() + ": the device estimate runs the pooled scoring only";
        }
        AttentionShape s = ctx.shape();
        if (s.queryLength() == 0 || s.keyLength() == 0) {
            return "an empty sequence: nothing to estimate";
        }
        int rows = ctx.geometry().tileRows();
        ForcedKeys f = pattern.forced();
        if (f.window() < rows) {
            return "window " + f.window() + ": the device estimate needs at least one tile (" + rows + " rows)";
        }
        if (s.keyLength() > MAX_KEYS) {
            return s.keyLength() + " keys: the device estimate takes at most " + MAX_KEYS;
        }
        if ((long) s.batch() * s.qHeads() > 65535) {
            return s.batch() * (long) s.qHeads() + " slices: the device estimate takes at most 65535";
        }
        int most = windowBlocks(ctx, f);
        if (most > MAX_WINDOW_BLOCKS) {
            return most + " sink and window blocks in a tile: the device estimate takes at most " + MAX_WINDOW_BLOCKS;
        }
        return null;
    }

    /**
     * The most sink and window blocks a tile has (the layout kernel's candidate blocks, as {@code
     * SharedKeySetLayout} walks them): blocks {@code [0, sinkBlocks)} and the blocks of keys {@code
     * [pLo − window + 1, pHi]} above them.
     */
    static int windowBlocks(PlanContext ctx, ForcedKeys f) {
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int sinkBlocks = f.sinks() == 0 || nk == 0 ? 0 : (Math.min(f.sinks(), nk) - 1) / bc + 1;
        int most = 0;
        for (int r0 = 0; r0 < nq; r0 += rows) {
            long pLo = (long) r0 + ctx.queryOffset();
            long pHi = pLo + Math.min(rows, nq - r0) - 1;
            long lo = Math.max(0, pLo - f.window() + 1);
            long hi = Math.min(nk - 1L, pHi);
            long bLo = hi < lo ? 1 : lo / bc;
            long bHi = hi < lo ? 0 : hi / bc;
            long second = Math.max(sinkBlocks, bLo);
            most = (int) Math.max(most, sinkBlocks + Math.max(0, bHi - second + 1));
        }
        return most;
    }

    /**
     * Builds the skeleton on {@code rt}'s device, with work lists for CTAs of each of {@code rowsPerCta}.
     * Throws {@link IllegalArgumentException} with the {@link #refusal} when there is one, or when the
     * device's shared memory per block is too small for the shape's keys.
     */
    CudaTopKEstimatedPlan(TopKPerQueryBlock pattern, PlanContext ctx, CudaRuntime rt, int... rowsPerCta) {
        this(pattern, ctx, rt, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES, rowsPerCta);
    }

    /**
     * As {@link #CudaTopKEstimatedPlan(TopKPerQueryBlock, PlanContext, CudaRuntime, int...)}, with a
     * scores' scratch of at most {@code scratchBudget} bytes (at least one group of {@value
     * #SCORE_TILES} tiles): a smaller budget runs more chunks of tile groups.
     */
    CudaTopKEstimatedPlan(TopKPerQueryBlock pattern, PlanContext ctx, CudaRuntime rt, long scratchBudget,
                          int[] rowsPerCta) {
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
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int slices = s.batch() * s.qHeads();
        this.tiles = (nq + rows - 1) / rows;
        this.cap = Math.min(pattern.k(), nk);
        this.capB = Math.max(1, windowBlocks(ctx, pattern.forced()));
        this.capG = capB * bc;
        this.selectShared = selectShared(s.headDim(), nk);
        if (selectShared + SELECT_STATIC_SHARED > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException(nk + " keys: the selection needs " + (selectShared + SELECT_STATIC_SHARED)
                    + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        this.scoreShared = CudaTopKQueryEstimatedPlan.scoreShared(s.headDim());
        if (scoreShared > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException("head dim " + s.headDim() + ": the scores need " + scoreShared
                    + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        this.unitsTotal = (long) slices * units(tiles);
        this.chunk = chunkUnits(slices, tiles, nk, scratchBudget);
        // the int pool: layout descriptions, the shared row arrays, then each slice's lists
        int rowStart = LI_STRIDE * slices;
        int rowCount = rowStart + tiles;
        int rowListOff = rowCount + tiles;
        int zeros = rowListOff + tiles;
        this.header = zeros + tiles + 1;
        long stride = sliceInts(tiles, capB, capG, cap);
        long total = header + stride * slices;
        long zeroFloats = Math.max(1L, (long) tiles * Math.max(capG, cap));
        if (total > Integer.MAX_VALUE || zeroFloats > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("shape " + s + ": the estimated plan's " + total + " ints exceed "
                    + Integer.MAX_VALUE);
        }
        this.sliceStride = (int) stride;
        int[] head = new int[header];
        ForcedKeys f = pattern.forced();
        ElementPredicate p = layoutPredicate(ctx, f);
        for (int l = 0; l < slices; l++) {
            int at = l * LI_STRIDE;
            int mine = header + l * sliceStride;
            head[at + LI_ROW_START] = rowStart;
            head[at + LI_ROW_COUNT] = rowCount;
            head[at + LI_ROW_LIST_OFFSET] = rowListOff;
            head[at + LI_ROW_LIST] = zeros;
            head[at + LI_FULL_OFFSETS] = mine;
            head[at + LI_PARTIAL_OFFSETS] = mine + (tiles + 1);
            head[at + LI_GATHER_OFFSETS] = mine + 2 * (tiles + 1);
            head[at + LI_UNCOND_OFFSETS] = mine + 3 * (tiles + 1);
            head[at + LI_FULL_BLOCKS] = mine + 4 * (tiles + 1);
            head[at + LI_PARTIAL_BLOCKS] = head[at + LI_FULL_BLOCKS] + tiles * capB;
            head[at + LI_GATHER_KEYS] = head[at + LI_PARTIAL_BLOCKS] + tiles * capB;
            head[at + LI_UNCOND_KEYS] = head[at + LI_GATHER_KEYS] + tiles * capG;
            head[at + LI_GATHER_LW] = 0; // every slice's log-weights: the float pool's zeros
            head[at + LI_UNCOND_LW] = 0;
            writePredicate(head, at, p, ctx.queryOffset());
            head[at + LI_ROW_ENTRY_OFFSETS] = -1;
            head[at + LI_ROW_ENTRIES] = -1;
        }
        for (int t = 0; t < tiles; t++) {
            head[rowStart + t] = t * rows;
            head[rowCount + t] = Math.min(rows, nq - t * rows);
            head[rowListOff + t] = -1;
        }
        DeviceBuffer ints = null;
        DeviceBuffer floats = null;
        List<DevicePlan.WorkList> lists = new ArrayList<>();
        DevicePlan dp = null;
        DeviceBuffer means = null;
        DeviceBuffer sel = null;
        DeviceBuffer cnt = null;
        DeviceBuffer scratch = null;
        try {
            dev.makeCurrent();
            ints = new DeviceBuffer(dev, 4L * total);
            ints.copyFrom(head);
            floats = new DeviceBuffer(dev, 4L * zeroFloats);
            floats.copyFrom(new float[(int) zeroFloats]);
            for (int r : rowsPerCta) {
                if (lists.stream().noneMatch(w -> w.rows() == r)) {
                    lists.add(DevicePlan.upload(dev, r, workItems(r)));
                }
            }
            dp = new DevicePlan(dev, ints, floats, lists);
            means = new DeviceBuffer(dev, 4L * slices * tiles * s.headDim());
            sel = new DeviceBuffer(dev, 4L * slices * tiles * Math.max(1, cap));
            cnt = new DeviceBuffer(dev, 4L * slices * tiles);
            scratch = new DeviceBuffer(dev, scratchBytes(chunk, nk));
        } catch (RuntimeException | Error e) {
            EstimateMemory.abandon(dp, ints, floats, lists, means, sel, cnt, scratch);
            throw e;
        }
        own(new EstimateMemory(dp, means, sel, cnt, scratch));
    }

    /**
     * The ints of one slice's lists: four offset arrays of {@code tiles + 1}, then per tile room for
     * {@code capB} full and {@code capB} partial blocks, {@code capG} gathered and {@code cap}
     * unconditional keys.
     */
    static long sliceInts(int tiles, int capB, int capG, int cap) {
        return 4L * (tiles + 1) + (long) tiles * (2L * capB + capG + cap);
    }

    /** The ranking kernels' dynamic shared memory: the mean query's room, one order key per key. */
    static int selectShared(int headDim, int keys) {
        return 4 * ((headDim + 3) / 4 * 4) + 4 * keys;
    }

    /** Groups of {@value #SCORE_TILES} consecutive query tiles in one slice: {@code ceil(tiles / SCORE_TILES)}. */
    static int units(int tiles) {
        return (tiles + SCORE_TILES - 1) / SCORE_TILES;
    }

    /**
     * Tile groups scored per chunk: as many of the {@code slices · units(tiles)} as a scratch of
     * {@code budget} bytes holds at {@code SCORE_TILES · nk} four-byte order keys per group, at least one,
     * and few enough that the ranking's grid ({@code SCORE_TILES} CTAs per group) stays within 2³¹ − 1 CTAs.
     */
    static long chunkUnits(int slices, int tiles, int nk, long budget) {
        long total = (long) slices * units(tiles);
        long perUnit = 4L * SCORE_TILES * Math.max(1, nk);
        return Math.max(1L, Math.min(Math.min(total, budget / perUnit), Integer.MAX_VALUE / SCORE_TILES));
    }

    /**
     * Key splits of {@code sparsa_tk_scores} (its grid's second dimension): each tile group's keys are scored
     * by this many CTAs over whole 128-key tiles, one split per 512 keys up to 8 (at 32k keys, 8 splits of 4096).
     * Later groups see more keys than earlier ones under causality; splitting every group's keys evens out the
     * CTAs' work.
     */
    static int keySplits(int nk) {
        return Math.max(1, Math.min(8, (nk + 511) / 512));
    }

    /**
     * Keys of one split of {@code sparsa_tk_scores}: whole 128-key tiles, {@code splits} of them cover {@code nk}
     * (a split that starts past a group's visible keys scores nothing).
     */
    static int keySpan(int nk, int splits) {
        int keyTiles = (nk + 127) / 128;
        return (keyTiles + splits - 1) / splits * 128;
    }

    /** Bytes of the scores' scratch: {@code chunk} tile groups of {@code SCORE_TILES · nk} order keys. */
    static long scratchBytes(long chunk, int nk) {
        return chunk * SCORE_TILES * 4L * Math.max(1, nk);
    }

    /**
     * The order keys {@code sparsa_tk_rank} holds in shared memory for the chunk of tile groups {@code
     * [g0, g0 + m)} (of {@code units} per slice): the keys its last tile's last row may see (tiles of
     * one slice see no fewer keys than the tiles before them; a chunk spanning two slices holds a
     * slice's last tile), rounded up to a multiple of 1024, at most the context's keys.
     */
    static int rankKeys(PlanContext ctx, int units, long g0, int m) {
        int rows = ctx.geometry().tileRows();
        int nq = ctx.queryLength();
        int tiles = (nq + rows - 1) / rows;
        long g1 = g0 + m - 1;
        long lastTile = g0 / units != g1 / units
                ? tiles - 1
                : Math.min(tiles - 1L, (g1 % units) * SCORE_TILES + SCORE_TILES - 1);
        long lastRow = Math.min(nq, (lastTile + 1) * rows) - 1;
        long n = lastVisibleKey(ctx, lastRow) + 1;
        return (int) Math.min(ctx.keyLength(), Math.max(0, (n + 1023) / 1024 * 1024));
    }

    /** The layout's predicate, as {@code SharedKeySetLayout} sets it: the context's, band {@code [0, window − 1]}, sinks. */
    static ElementPredicate layoutPredicate(PlanContext ctx, ForcedKeys f) {
        return ctx.basePredicate().withBand(0, f.window() - 1).withSinks(f.sinks());
    }

    /**
     * The work items for CTAs of {@code rows} query rows: every tile of every slice, those that may see
     * more keys first (bounded by the window's blocks and the selection).
     */
    private int[] workItems(int rows) {
        int tileRows = ctx.geometry().tileRows();
        int nq = ctx.queryLength();
        long window = (long) capB * ctx.geometry().blockCols();
        return tileWork(ctx, rows, t -> {
            long lastKey = lastVisibleKey(ctx, Math.min(nq, (long) (t + 1) * tileRows) - 1);
            return lastKey < 0 ? 0 : Math.min(lastKey + 1, window + cap);
        });
    }

    /** The pattern estimated. */
    @Override
    public TopKPerQueryBlock pattern() {
        return pattern;
    }

    /** The estimate's kernels, in launch order, joined by {@code +}. */
    static final String KERNELS = "sparsa_tk_mean+sparsa_tk_scores+sparsa_tk_rank+sparsa_tk_emit_counts"
            + "+sparsa_tk_emit_offsets+sparsa_tk_emit_tiles";

    /** Query tiles per CTA of {@code sparsa_tk_emit_counts} and {@code sparsa_tk_emit_tiles}: one warp each. */
    static final int EMIT_TILES_PER_CTA = 16;

    /**
     * The grid of {@code sparsa_tk_emit_counts} and {@code sparsa_tk_emit_tiles}: {@code slices ·
     * ceil(tiles / 16)} CTAs in one dimension.
     *
     * @throws IllegalArgumentException if that passes 2³¹ − 1 CTAs
     */
    static int emitTilesBlocks(int slices, int tiles) {
        long blocks = (long) slices * ((tiles + EMIT_TILES_PER_CTA - 1) / EMIT_TILES_PER_CTA);
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("estimate: " + slices + " slices of " + tiles
                    + " query tiles need more CTAs than one launch takes (" + blocks + ")");
        }
        return (int) blocks;
    }

    /**
     * Queues the estimate on {@code stream}: the mean queries, the selection, the lists. Q and K are
     * device tensors of the context's shape (checked by the caller).
     */
    @Override
    synchronized void queueEstimate(Tensor q, Tensor k, CudaStream stream) {
        AttentionShape s = ctx.shape();
        CudaModule mod = runtime().module();
        int d = s.headDim();
        int rows = ctx.geometry().tileRows();
        int slices = s.batch() * s.qHeads();
        ForcedKeys f = pattern.forced();
        DeviceBuffer means = memory().buffer(MEANS);
        DeviceBuffer sel = memory().buffer(SEL);
        DeviceBuffer cnt = memory().buffer(SEL_COUNT);
        int causal = ctx.causal() ? 1 : 0;
        CudaEstimatedPlan.launch(mod.function("sparsa_tk_mean", 0), tiles, s.qHeads(), s.batch(),
                Math.min(256, (d + 31) / 32 * 32), 0, stream, "sparsa_tk_mean",
                Pointer.to(CudaTensors.buffer("q", q).pointer(q.byteOffset())), Pointer.to(new int[] {outKind(q.dtype())}),
                Pointer.to(new long[] {q.stride(0)}), Pointer.to(new long[] {q.stride(1)}), Pointer.to(new long[] {q.stride(2)}),
                Pointer.to(new int[] {s.qHeads()}), Pointer.to(new int[] {s.queryLength()}), Pointer.to(new int[] {d}),
                Pointer.to(new int[] {rows}), Pointer.to(new int[] {tiles}), Pointer.to(means.pointer()));
        int nk = s.keyLength();
        int units = units(tiles);
        Pointer kp = Pointer.to(CudaTensors.buffer("k", k).pointer(k.byteOffset()));
        DeviceBuffer scratch = memory().buffer(SCRATCH);
        for (long g0 = 0; g0 < unitsTotal; g0 += chunk) {
            int m = (int) Math.min(chunk, unitsTotal - g0);
            if (cap > 0) {
                CudaEstimatedPlan.launch(mod.function("sparsa_tk_scores", scoreShared), m, keySplits(nk), 1,
                        CudaTopKQueryEstimatedPlan.SCORE_THREADS, scoreShared, stream, "sparsa_tk_scores",
                        Pointer.to(means.pointer()), kp, Pointer.to(new int[] {outKind(k.dtype())}),
                        Pointer.to(new long[] {k.stride(0)}), Pointer.to(new long[] {k.stride(1)}),
                        Pointer.to(new long[] {k.stride(2)}), Pointer.to(new int[] {s.qHeads()}),
                        Pointer.to(new int[] {s.groupSize()}), Pointer.to(new int[] {tiles}), Pointer.to(new int[] {d}),
                        Pointer.to(new int[] {rows}), Pointer.to(new int[] {s.queryLength()}),
                        Pointer.to(new int[] {nk}), Pointer.to(new int[] {causal}),
                        Pointer.to(new int[] {ctx.queryOffset()}), Pointer.to(new long[] {g0}),
                        Pointer.to(new int[] {units}), Pointer.to(scratch.pointer()));
            }
            int rankShared = selectShared(d, rankKeys(ctx, units, g0, m));
            CudaEstimatedPlan.launch(mod.function("sparsa_tk_rank", rankShared), m * SCORE_TILES, 1, 1, SELECT_THREADS,
                    rankShared, stream, "sparsa_tk_rank", Pointer.to(scratch.pointer()), Pointer.to(new int[] {d}),
                    Pointer.to(new int[] {tiles}), Pointer.to(new int[] {rows}), Pointer.to(new int[] {s.queryLength()}),
                    Pointer.to(new int[] {nk}), Pointer.to(new int[] {causal}), Pointer.to(new int[] {ctx.queryOffset()}),
                    Pointer.to(new int[] {f.sinks()}), Pointer.to(new int[] {f.window()}), Pointer.to(new int[] {cap}),
                    Pointer.to(new long[] {g0}), Pointer.to(new int[] {units}), Pointer.to(sel.pointer()),
                    Pointer.to(cnt.pointer()));
        }
        ElementPredicate p = layoutPredicate(ctx, f);
        Pointer[] emit = {Pointer.to(sel.pointer()), Pointer.to(cnt.pointer()), Pointer.to(new int[] {cap}),
                Pointer.to(new int[] {tiles}), Pointer.to(new int[] {rows}),
                Pointer.to(new int[] {ctx.geometry().blockCols()}), Pointer.to(new int[] {s.queryLength()}),
                Pointer.to(new int[] {s.keyLength()}), Pointer.to(new int[] {ctx.queryOffset()}),
                Pointer.to(new int[] {causal}), Pointer.to(new int[] {p.bandLo()}), Pointer.to(new int[] {p.bandHi()}),
                Pointer.to(new int[] {p.sinks()}), Pointer.to(new int[] {f.window()}), Pointer.to(new int[] {capB}),
                Pointer.to(new int[] {capG}), Pointer.to(memory().plan().ints().pointer()), Pointer.to(new long[] {header}),
                Pointer.to(new long[] {sliceStride})};
        int blocks = emitTilesBlocks(slices, tiles);
        CudaEstimatedPlan.launch(mod.function("sparsa_tk_emit_counts", 0), blocks, 1, 1, EMIT_TILES_PER_CTA * 32, 0,
                stream, "sparsa_tk_emit_counts", emit);
        CudaEstimatedPlan.launch(mod.function("sparsa_tk_emit_offsets", 0), slices, 1, 1, 512, 0, stream,
                "sparsa_tk_emit_offsets", Pointer.to(new int[] {tiles}), Pointer.to(new int[] {capB}),
                Pointer.to(new int[] {capG}), Pointer.to(memory().plan().ints().pointer()), Pointer.to(new long[] {header}),
                Pointer.to(new long[] {sliceStride}));
        CudaEstimatedPlan.launch(mod.function("sparsa_tk_emit_tiles", 0), blocks, 1, 1, EMIT_TILES_PER_CTA * 32, 0,
                stream, "sparsa_tk_emit_tiles", emit);
    }

    /**
     * The selection of {@code slice} (batch · qHeads + head) as the device last wrote it: per query
     * tile, its ascending keys (the form of {@link TopKPerQueryBlock#select}). Copies synchronously;
     * for tests.
     */
    int[][] selection(int slice) {
        int[] counts = memory().buffer(SEL_COUNT).readInts(4L * slice * tiles, tiles);
        int c = Math.max(1, cap);
        int[] all = memory().buffer(SEL).readInts(4L * slice * tiles * c, tiles * c);
        int[][] out = new int[tiles][];
        for (int t = 0; t < tiles; t++) {
            out[t] = Arrays.copyOfRange(all, t * c, t * c + counts[t]);
        }
        return out;
    }

    /**
     * The lists of {@code slice} as the device last wrote them: {full offsets, full blocks, partial
     * offsets, partial blocks, gather offsets, gathered keys, unconditional offsets, unconditional
     * keys}, in the form of {@link dev.sparsa.plan.HeadLayout}'s arrays. Copies synchronously; for tests.
     */
    int[][] lists(int slice) {
        DeviceBuffer ints = memory().plan().ints();
        long at = 4L * (header + (long) slice * sliceStride);
        int[][] offsets = new int[4][];
        for (int i = 0; i < 4; i++) {
            offsets[i] = ints.readInts(at + 4L * i * (tiles + 1), tiles + 1);
        }
        long data = at + 16L * (tiles + 1);
        int[] caps = {capB, capB, capG, cap};
        int[][] out = new int[8][];
        for (int i = 0; i < 4; i++) {
            int[] all = ints.readInts(data, tiles * caps[i]);
            // tile t's entries were written contiguously from offsets[t]: the arrays are compact
            out[2 * i] = offsets[i];
            out[2 * i + 1] = Arrays.copyOf(all, offsets[i][tiles]);
            data += 4L * tiles * caps[i];
        }
        return out;
    }

    /**
     * At most {@code k} selected keys per query tile, besides its forced ones: the sinks, and the
     * window with the tile's own rows (blocks the band touches, read whole).
     */
    @Override
    public double visitedFractionBound() {
        return visitedFractionBound(pattern, ctx);
    }

    /** {@link #visitedFractionBound()} of the plan this pattern and context would make, known before one is made. */
    static double visitedFractionBound(TopKPerQueryBlock pattern, PlanContext ctx) {
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        ForcedKeys f = pattern.forced();
        long forced = (long) f.sinks() + cols + (long) f.window() + rows + 2L * cols;
        return keptFraction(ctx, rows, pattern.k() + forced);
    }

    @Override
    String kernels() {
        return KERNELS;
    }

}
