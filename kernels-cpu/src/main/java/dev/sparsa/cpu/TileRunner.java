package dev.sparsa.cpu;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.LseMerge;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;

/**
 * One forward call of the CPU kernel: FlashAttention-2 over a {@link SparsePlan}, tile by tile.
 *
 * <p>For a work item it reads the tile's query rows (of every stacked head) once, transposed and
 * scaled (row-major and scaled instead when the tile is {@linkplain TileMath#narrow narrow}: a few
 * rows against their gathered keys, scored by dot products along the head dimension), then streams
 * the tile's key chunks in a fixed order (full blocks, partial blocks, gathered
 * keys in chunks of {@code blockCols}, unconditional keys in chunks of {@code blockCols}); each chunk's
 * K and V rows are converted to f32 once and used by every stacked head. Per chunk: scores, soft-cap,
 * log-weights, the element predicate (only on partial blocks and gathered keys), an online-softmax
 * step and the P·V update, all in f32. Rows end as {@code o/l} with LSE {@code m + log l}; a row that
 * admitted nothing gets 0 and −∞.
 *
 * <p>Consecutive narrow tiles of a work item that list keys (token gather: an indexer's or a top-k's
 * per-query lists) run in groups of up to {@value #GROUP_TILES} that never cross a multiple of
 * {@value #GROUP_TILES} tiles. One-row tiles without log-weights whose lists overlap enough run as
 * one tile of their rows over the union of their lists (non-members masked); other groups run
 * chunk by chunk across the group, each tile with its own state, so neighbouring queries' lists
 * read each key row while it is still cached.
 *
 * <p>Every row's arithmetic depends only on its own data, the fixed chunk order and, for a union,
 * its group, which the plan fixes (runs are cut at group boundaries), never on the thread or on
 * which other rows share its tile, so results are bitwise identical for any thread count. Work
 * items write disjoint output rows.
 */
final class TileRunner {
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /**
     * Narrow tiles of a run visited together ({@link #computeUnion}, {@link #computeGroup}); groups
     * never cross a multiple of it. 16 one-row tiles fill one 512-bit vector of rows in a union, and
     * keep their state (about 1 KiB each) in L1 when run chunk by chunk.
     */
    static final int GROUP_TILES = 16;
    /**
     * A group of one-row tiles runs over the union of its lists when that computes at most this many
     * times the listed pairs ({@link #unionPays}). On the DSA indexer's plan at N 16384, limits of 2.5,
     * 3 and 4 ran equally fast and 2 slower (fewer groups stacked).
     */
    static final int UNION_FACTOR = 3;
    private static final ThreadLocal<Scratch[]> GROUP = ThreadLocal.withInitial(() -> {
        Scratch[] g = new Scratch[GROUP_TILES];
        for (int i = 0; i < g.length; i++) {
            g[i] = new Scratch();
        }
        return g;
    });
    /**
     * Block tiles of a run that may share each converted K/V block ({@link #computeShared}): up to this
     * many consecutive tiles, 8 unless the system property {@code sparsa.cpu.shareTiles} says otherwise
     * (1 to {@value #GROUP_TILES}; 1: every tile runs alone, as before). The bits are the same either way.
     */
    static final int SHARE_TILES = Math.clamp(Integer.getInteger("sparsa.cpu.shareTiles", 8), 1, GROUP_TILES);
    /**
     * Tiles share their K/V blocks when their block visits are at least this many times the distinct
     * block loads that sharing leaves ({@link #sharePays}).
     */
    static final int SHARE_MIN = 3;
    /**
     * The stacked rows (padded to the lanes) that the tiles of a shared run hold at most: each keeps its
     * transposed queries and output accumulators (about 1 KiB per row at head dim 128) live while the
     * blocks go by, 512 KiB for eight tiles of 64 rows, which a 1 MiB L2 holds next to the block.
     */
    static final int SHARE_ROWS = 512;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final TileMath math;
    private final SparsePlan plan;
    private final AttentionShape shape;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor out;
    private final Tensor lse;
    private final float scale;
    private final float softCap;
    private final int dim;
    private final int valueDim;
    private final int cols;
    private final int lanes;
    private final int blockCols;
    /** Row stride of the narrow form's row-major scores: the chunk width rounded up to the lanes. */
    private final int ldR;
    private final int keyLength;
    /** The short[] behind 16-bit K/V rows, else null (e4m3 rows are widened through {@link WidenedRows}). */
    private final Object kArray;
    private final Object vArray;
    private final Object qArray;
    private final long qArrayBase;
    /** Element index of the segment's start within its heap array. */
    private final long kArrayBase;
    private final long vArrayBase;
    /** The float[] behind f32 heap K and V whose listed rows are read in place, else null; with their base index. */
    private final float[] kF32;
    private final float[] vF32;
    private final long kF32Base;
    private final long vF32Base;
    /** The float[] behind f32 heap Q with unit last stride, else null; with its base index. */
    private final float[] qF32;
    private final long qF32Base;
    /** The float[] behind a writable f32 heap output (rows normalised straight into it), else null. */
    private final float[] outF32;
    /** Whether K and V are f32 heap rows that lie back to back, the rows {@link #touchAhead} reads ahead. */
    private final boolean touchKv;
    private final long outF32Base;
    /** At most this many block tiles share a K/V block ({@link #SHARE_TILES}; 1 turns sharing off). */
    private final int shareTiles;
    private final int shareMin;

    TileRunner(TileMath math, SparsePlan plan, AttentionShape shape, Tensor q, Tensor k, Tensor v, Tensor out,
               Tensor lse, RunOptions options) {
        this(math, plan, shape, q, k, v, out, lse, options, SHARE_TILES, SHARE_MIN);
    }

    /**
     * With at most {@code shareTiles} block tiles sharing a converted K/V block (1: none) where their
     * visits are at least {@code shareMin} times the loads ({@link #sharePays}).
     */
    TileRunner(TileMath math, SparsePlan plan, AttentionShape shape, Tensor q, Tensor k, Tensor v, Tensor out,
               Tensor lse, RunOptions options, int shareTiles, int shareMin) {
        if (shareTiles < 1 || shareTiles > GROUP_TILES) {
            throw new IllegalArgumentException("shareTiles: " + shareTiles + " is not in [1, " + GROUP_TILES + "]");
        }
        this.shareTiles = shareTiles;
        this.shareMin = shareMin;
        this.math = math;
        this.plan = plan;
        this.shape = shape;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
        this.dim = shape.headDim();
        this.valueDim = shape.valueDim();
        this.scale = (float) options.scaleFor(dim);
        this.softCap = options.softCap();
        this.lanes = math.lanes();
        this.cols = roundUp(valueDim, lanes);
        this.blockCols = plan.geometry().blockCols();
        this.ldR = roundUp(blockCols, lanes);
        this.keyLength = shape.keyLength();
        this.kArray = heapArray(k);
        this.vArray = heapArray(v);
        this.kArrayBase = k.segment().address() / k.dtype().byteSize();
        this.vArrayBase = v.segment().address() / v.dtype().byteSize();
        this.qArray = heapArray(q);
        this.kF32 = inPlaceF32(k, dim);
        this.vF32 = inPlaceF32(v, cols);
        this.kF32Base = k.segment().address() / 4;
        this.vF32Base = v.segment().address() / 4;
        this.qArrayBase = q.segment().address() / q.dtype().byteSize();
        this.qF32 = inPlaceF32(q, dim);
        this.qF32Base = q.segment().address() / 4;
        this.outF32 = out.segment().isReadOnly() ? null : inPlaceF32(out, valueDim);
        this.outF32Base = out.segment().address() / 4;
        this.touchKv = kF32 != null && vF32 != null && k.stride(2) == dim && v.stride(2) == valueDim;
    }

    /** The short[] behind a 16-bit heap tensor, else null. */
    private static Object heapArray(Tensor t) {
        Object base = t.segment().heapBase().orElse(null);
        return t.dtype().byteSize() == 2 && base instanceof short[] ? base : null;
    }

    // ================================================================== rows no tile holds

    /**
     * Writes 0 and −∞ to the rows that no tile of their (row-disjoint) layout holds. Rows of layouts
     * with repeated rows are written by their slice's work item.
     */
    void clearUncoveredRows(CpuPreparedPlan prepared) {
        float[] zeros = new float[valueDim];
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.qHeads(); h++) {
                BitSet covered = prepared.coveredRows(plan.layoutIndex(b, h));
                if (covered == null) {
                    continue;
                }
                for (int r = covered.nextClearBit(0); r < shape.queryLength(); r = covered.nextClearBit(r + 1)) {
                    out.writeRow(b, h, r, zeros, 0);
                    if (lse != null) {
                        lse.set(b, h, r, 0, Float.NEGATIVE_INFINITY);
                    }
                }
            }
        }
    }

    // ================================================================== one item

    /** Runs one work item on the calling thread with its thread-local scratch. */
    void run(WorkItem item) {
        Scratch sc = SCRATCH.get();
        HeadLayout lay = plan.layouts().get(item.layout());
        if (item.tile() != WorkItem.ALL_TILES) {
            boolean direct = outF32 != null && valueDim == cols;
            int aloneEnd = item.tile(); // tiles before it run alone: their run was found not to pay for sharing
            for (int t = item.tile(); t < item.tileEnd(); ) {
                if (t > item.tile() && Thread.currentThread().isInterrupted()) {
                    throw new java.util.concurrent.CancellationException("interrupted in tile " + t + " of a run of "
                            + lay.tileCount() + " tiles; the output is incomplete");
                }
                // groups never cross a multiple of GROUP_TILES, where runs are cut (CpuPreparedPlan), so
                // they do not depend on the thread count
                int blockEnd = Math.min(item.tileEnd(), (t / GROUP_TILES + 1) * GROUP_TILES);
                int end = t + 1;
                while (end < blockEnd && groupable(lay, t, item.heads()) && groupable(lay, end, item.heads())) {
                    end++;
                }
                if (end - t == 1) {
                    int shareEnd = t < aloneEnd ? t : shareEnd(lay, t, item.tileEnd(), item.heads());
                    if (shareEnd - t > 1) {
                        if (sharePays(lay, t, shareEnd, sc)) {
                            computeShared(lay, t, shareEnd, item.batch(), item.firstHead(), item.heads(), sc, direct,
                                    item.tileEnd());
                            t = shareEnd;
                            continue;
                        }
                        aloneEnd = shareEnd; // asked once per run of tiles, not once per tile
                    }
                    computeTile(lay, t, item.batch(), item.firstHead(), item.heads(), sc, direct, item.tileEnd());
                    emitTile(lay, t, item.batch(), item.firstHead(), item.heads(), sc);
                } else if (unionPays(lay, t, end, sc)) {
                    try {
                        computeUnion(lay, t, end, item.batch(), item.firstHead(), item.heads(), sc);
                    } finally {
                        clearUnion(sc); // the marks stay zero between groups, also after a failure
                    }
                } else {
                    computeGroup(lay, t, end, item.batch(), item.firstHead(), item.heads(), direct);
                }
                t = end;
            }
            return;
        }
        // rows in several tiles: each tile's exact partial is merged through the LSE, tiles in order,
        // into the output itself when it is f32 (no buffer), else into f32 pages (never one array)
        int nq = shape.queryLength();
        int heads = item.heads();
        int b = item.batch();
        int h0 = item.firstHead();
        boolean inPlace = out.dtype() == DType.F32;
        FloatPages accLse = new FloatPages((long) heads * nq, MERGE_PAGE_BITS, Float.NEGATIVE_INFINITY);
        FloatPages accOut = inPlace ? null : new FloatPages((long) heads * nq * valueDim, MERGE_PAGE_BITS, 0f);
        float[] acc = new float[valueDim];
        for (int t = 0; t < lay.tileCount(); t++) {
            if (Thread.currentThread().isInterrupted()) {
                throw new java.util.concurrent.CancellationException("interrupted in tile " + t + " of "
                        + lay.tileCount() + " of a work item; the output is incomplete");
            }
            computeTile(lay, t, b, h0, heads, sc, false, lay.tileCount());
            int count = lay.rowCount(t);
            for (int g = 0; g < heads; g++) {
                for (int i = 0; i < count; i++) {
                    float rowLse = finishRow(sc, g * count + i);
                    int row = lay.row(t, i);
                    long slot = (long) g * nq + row;
                    float prev = accLse.get(slot);
                    if (rowLse == Float.NEGATIVE_INFINITY) {
                        continue; // an empty partial changes nothing
                    }
                    float merged = rowLse;
                    if (prev == Float.NEGATIVE_INFINITY) {
                        System.arraycopy(sc.row, 0, acc, 0, valueDim);
                    } else {
                        readAcc(accOut, b, h0 + g, row, slot, acc);
                        merged = LseMerge.mergeRow(acc, 0, prev, sc.row, 0, rowLse, valueDim);
                    }
                    if (inPlace) {
                        out.writeRow(b, h0 + g, row, acc, 0);
                    } else {
                        accOut.write(slot * valueDim, acc, 0, valueDim);
                    }
                    accLse.set(slot, merged);
                }
            }
        }
        for (int g = 0; g < heads; g++) {
            for (int row = 0; row < nq; row++) {
                long slot = (long) g * nq + row;
                float rowLse = accLse.get(slot);
                if (rowLse == Float.NEGATIVE_INFINITY) {
                    java.util.Arrays.fill(acc, 0f);
                    writeOut(b, h0 + g, row, acc, 0, sc.raw);
                } else if (!inPlace) {
                    accOut.read(slot * valueDim, acc, 0, valueDim);
                    writeOut(b, h0 + g, row, acc, 0, sc.raw);
                }
                if (lse != null) {
                    lse.set(b, h0 + g, row, 0, rowLse);
                }
            }
        }
    }

    /** Pages of the merge buffers: 2^20 floats (4 MB). */
    static final int MERGE_PAGE_BITS = 20;

    /** Reads a row's running merge: from the f32 output itself, or from the pages. */
    private void readAcc(FloatPages accOut, int b, int h, int row, long slot, float[] dst) {
        if (accOut == null) {
            out.readRow(b, h, row, dst, 0);
        } else {
            accOut.read(slot * valueDim, dst, 0, valueDim);
        }
    }

    /** Writes the finished rows of the tile in scratch to the output (and LSE). */
    private void emitTile(HeadLayout lay, int t, int b, int h0, int heads, Scratch sc) {
        int count = lay.rowCount(t);
        for (int g = 0; g < heads; g++) {
            for (int i = 0; i < count; i++) {
                int row = lay.row(t, i);
                float rowLse;
                if (outF32 != null) {
                    rowLse = finishRow(sc, g * count + i, outF32, (int) (outF32Base + out.index(b, h0 + g, row, 0)),
                            lse != null, sc.direct != null);
                } else {
                    rowLse = finishRow(sc, g * count + i, sc.row, 0, lse != null, false);
                    writeOut(b, h0 + g, row, sc.row, 0, sc.raw);
                }
                if (lse != null) {
                    lse.set(b, h0 + g, row, 0, rowLse);
                }
            }
        }
    }

    /**
     * Writes one output row, rounding to the output type: 16-bit rows are rounded into {@code raw}
     * and copied in bulk (Tensor.writeRow would convert element by element).
     */
    private void writeOut(int b, int h, int row, float[] src, int off, short[] raw) {
        DType type = out.dtype();
        if (type == DType.F32 || raw.length < valueDim) {
            out.writeRow(b, h, row, src, off);
            return;
        }
        if (type == DType.BF16) {
            for (int c = 0; c < valueDim; c++) {
                raw[c] = DType.floatToBf16(src[off + c]);
            }
        } else {
            for (int c = 0; c < valueDim; c++) {
                raw[c] = Float.floatToFloat16(src[off + c]);
            }
        }
        MemorySegment.copy(raw, 0, out.segment(), I16, out.index(b, h, row, 0) * 2, valueDim);
    }

    /** {@link #finishRow(Scratch, int, float[], int, boolean, boolean)} into {@code sc.row}, with the LSE. */
    private float finishRow(Scratch sc, int r) {
        return finishRow(sc, r, sc.row, 0, true, false);
    }

    /**
     * Normalises stacked row {@code r} into {@code dst[dstAt ..]} and returns its LSE: 0 and −∞ if it
     * admitted nothing (or only −∞ scores), NaN everywhere if a score was NaN or +∞ (the running sum
     * turns NaN then, and stays NaN). Without {@code wantLse} a row that admitted something returns 0
     * instead of its LSE (the logarithm is skipped). With {@code written} the tile's last chunk has
     * already written the normalised row there; only the special rows are overwritten.
     */
    private float finishRow(Scratch sc, int r, float[] dst, int dstAt, boolean wantLse, boolean written) {
        float l = sc.l[r];
        float m = sc.m[r];
        if (Float.isNaN(l)) {
            java.util.Arrays.fill(dst, dstAt, dstAt + valueDim, Float.NaN);
            return Float.NaN;
        }
        if (!(l > 0f) || m == Float.NEGATIVE_INFINITY) {
            java.util.Arrays.fill(dst, dstAt, dstAt + valueDim, 0f);
            return Float.NEGATIVE_INFINITY;
        }
        if (!written) {
            math.normalise(sc.o, r * cols, l, dst, dstAt, valueDim);
        }
        return wantLse ? (float) (m + Math.log(l)) : 0f;
    }

    /**
     * Runs tile {@code t} for query heads {@code h0 .. h0+heads-1} (stacked rows {@code g·count + i}),
     * leaving the unnormalised outputs and softmax state in {@code sc}; with {@code direct} (rows of an
     * f32 heap output exactly the value dim wide) the last chunk writes the rows divided by their sums
     * to the output instead, and {@code sc.direct} says so to {@link #emitTile}. Before each block's
     * copy it {@linkplain #touchAhead touches} the block after it (the tile's next, else the first of
     * tile {@code t + 1} when that is before {@code tileEnd}).
     */
    private void computeTile(HeadLayout lay, int t, int b, int h0, int heads, Scratch sc, boolean direct,
                             int tileEnd) {
        int chunks = beginTile(lay, t, b, h0, heads, sc, direct);
        int blocks = keyBlocks(lay, t);
        for (int c = 0; c < chunks; c++) {
            if (c < blocks) {
                touchAhead(lay, t, c + 1 < blocks ? c + 1 : -1, tileEnd, b, h0, heads, sc);
            }
            runChunk(lay, t, b, heads, sc, c);
        }
    }

    /**
     * Tiles of a run visited together, chunk by chunk: the first chunk of every tile, then the second,
     * and so on, each tile in its own scratch. Each tile's arithmetic is exactly that of {@link
     * #computeTile} (its own chunks in its own order), so the bits do not change; what changes is
     * that consecutive rows' gathered lists, which overlap for the selections that produce them (an
     * indexer's top-k of neighbouring queries), read the same key rows while they are still cached.
     */
    private void computeGroup(HeadLayout lay, int t0, int t1, int b, int h0, int heads, boolean direct) {
        Scratch[] group = GROUP.get();
        int most = 0;
        int[] chunks = new int[t1 - t0];
        for (int t = t0; t < t1; t++) {
            chunks[t - t0] = beginTile(lay, t, b, h0, heads, group[t - t0], direct);
            most = Math.max(most, chunks[t - t0]);
        }
        for (int c = 0; c < most; c++) {
            for (int t = t0; t < t1; t++) {
                if (c < chunks[t - t0]) {
                    runChunk(lay, t, b, heads, group[t - t0], c);
                }
            }
        }
        for (int t = t0; t < t1; t++) {
            emitTile(lay, t, b, h0, heads, group[t - t0]);
        }
    }

    /**
     * Whether one-row tiles {@code t0 .. t1−1} without log-weights run as one stacked tile over the
     * union of their key lists ({@link #computeUnion}): when that computes at most {@value
     * #UNION_FACTOR} times the pairs the lists hold and their keys lie in a range less than four times
     * as long as the lists together (the union is found by a scan of that range). Leaves the sorted
     * union in {@code sc.union}
     * ({@code sc.unionSize} keys) and, per key, which tiles gather it and which hold it
     * unconditionally in {@code sc.gatheredBy} / {@code sc.heldBy} (bit {@code t − t0}).
     */
    private boolean unionPays(HeadLayout lay, int t0, int t1, Scratch sc) {
        if (lay.hasGatherLogWeights()) {
            return false;
        }
        long listed = 0;
        for (int t = t0; t < t1; t++) {
            if (lay.rowCount(t) != 1 || lay.fullEnd(t) > lay.fullStart(t) || lay.partialEnd(t) > lay.partialStart(t)) {
                return false;
            }
            for (int i = lay.unconditionalStart(t); i < lay.unconditionalEnd(t); i++) {
                if (lay.unconditionalLogWeight(i) != 0f) {
                    return false;
                }
            }
            listed += lay.gatherEnd(t) - lay.gatherStart(t) + lay.unconditionalEnd(t) - lay.unconditionalStart(t);
        }
        // each list is ascending: its ends bound the range the union is found in
        int lo = keyLength;
        int hi = -1;
        for (int t = t0; t < t1; t++) {
            if (lay.gatherEnd(t) > lay.gatherStart(t)) {
                lo = Math.min(lo, lay.gatherKey(lay.gatherStart(t)));
                hi = Math.max(hi, lay.gatherKey(lay.gatherEnd(t) - 1));
            }
            if (lay.unconditionalEnd(t) > lay.unconditionalStart(t)) {
                lo = Math.min(lo, lay.unconditionalKey(lay.unconditionalStart(t)));
                hi = Math.max(hi, lay.unconditionalKey(lay.unconditionalEnd(t) - 1));
            }
        }
        if (hi - lo >= 4L * listed) {
            return false; // lists sparse in a long range: scanning it would cost more than the union saves
        }
        sc.ensureKeys(keyLength, (int) Math.min(listed, keyLength));
        int[] gatheredBy = sc.gatheredBy;
        int[] heldBy = sc.heldBy;
        for (int t = t0; t < t1; t++) {
            int bit = 1 << (t - t0);
            for (int i = lay.gatherStart(t); i < lay.gatherEnd(t); i++) {
                gatheredBy[lay.gatherKey(i)] |= bit;
            }
            for (int i = lay.unconditionalStart(t); i < lay.unconditionalEnd(t); i++) {
                heldBy[lay.unconditionalKey(i)] |= bit;
            }
        }
        sc.unionLo = lo;
        sc.unionHi = hi;
        // the union in ascending order: one scan of the marked range
        int size = 0;
        for (int key = lo; key <= hi; key++) {
            if ((gatheredBy[key] | heldBy[key]) != 0) {
                sc.union[size++] = key;
            }
        }
        sc.unionSize = size;
        if ((long) size * (t1 - t0) > UNION_FACTOR * listed) {
            clearUnion(sc);
            return false;
        }
        return true;
    }

    /** Clears the membership marks of the range {@link #unionPays} marked. */
    private static void clearUnion(Scratch sc) {
        if (sc.unionHi >= sc.unionLo) {
            java.util.Arrays.fill(sc.gatheredBy, sc.unionLo, sc.unionHi + 1, 0);
            java.util.Arrays.fill(sc.heldBy, sc.unionLo, sc.unionHi + 1, 0);
        }
        sc.unionLo = 0;
        sc.unionHi = -1;
        sc.unionSize = 0;
    }

    /**
     * One-row tiles {@code t0 .. t1−1} (of {@code heads} stacked heads) run as one tile of their rows
     * (stacked row {@code g·G + i}: head {@code h0 + g}, tile {@code t0 + i}) over the sorted union of
     * their lists that {@link #unionPays} left in {@code sc}, in chunks of {@code blockCols} keys, with
     * the rows in the vector lanes as in a block tile; a key is admitted for a row when its tile holds
     * it unconditionally, or gathers it and the predicate admits the pair, else its score is −∞.
     */
    private void computeUnion(HeadLayout lay, int t0, int t1, int b, int h0, int heads, Scratch sc) {
        int g0 = t1 - t0;
        int rows = heads * g0;
        int rowsPad = roundUp(rows, lanes);
        sc.ensure(rowsPad, blockCols, dim, cols, ldR);
        int kvh = shape.kvHeadOf(h0);
        int offset = lay.queryOffset();
        for (int g = 0; g < heads; g++) {
            for (int i = 0; i < g0; i++) {
                int r = g * g0 + i;
                int row = lay.row(t0 + i, 0);
                sc.rowAt[r] = r * dim;
                sc.qPos[r] = (long) row + offset;
                if (qF32 != null) {
                    System.arraycopy(qF32, (int) (qF32Base + q.index(b, h0 + g, row, 0)), sc.qR, r * dim, dim);
                } else if (qArray != null) {
                    widen(q.dtype(), (short[]) qArray, (int) (qArrayBase + q.index(b, h0 + g, row, 0)), sc.qR, r * dim,
                            dim);
                } else {
                    queryRow(b, h0 + g, row, sc.qR, r * dim);
                }
            }
        }
        math.transposeScaled(sc.qR, sc.rowAt, rows, rowsPad, dim, scale, sc.qT);
        Scratch.fill(sc.m, rowsPad, Float.NEGATIVE_INFINITY);
        Scratch.fill(sc.l, rowsPad, 0f);
        sc.fresh = true;
        ElementPredicate p = lay.predicate();
        boolean causalOnly = p.onlyCausal() && p.sinks() == 0;
        boolean tested = !causalOnly || p.causal();
        float[] s = sc.s;
        for (int u0 = 0; u0 < sc.unionSize; u0 += blockCols) {
            int n = Math.min(blockCols, sc.unionSize - u0);
            System.arraycopy(sc.union, u0, sc.keys, 0, n);
            loadListed(b, kvh, n, sc);
            math.scores(sc.qT, rowsPad, rowsPad, sc.kRows, sc.kOff, dim, n, s, rowsPad);
            if (softCap > 0f) {
                math.softCap(s, rowsPad, n, rowsPad, softCap);
            }
            int all = g0 == 32 ? -1 : (1 << g0) - 1;
            for (int j = 0; j < n; j++) {
                int key = sc.keys[j];
                int gathered = sc.gatheredBy[key];
                int admitted = sc.heldBy[key];
                for (int bits = gathered & ~admitted; bits != 0; bits &= bits - 1) {
                    int i = Integer.numberOfTrailingZeros(bits);
                    if (!tested || (causalOnly ? sc.qPos[i] >= key : p.admits(sc.qPos[i], key, keyLength))) {
                        admitted |= 1 << i;
                    }
                }
                // the rows whose tile neither holds nor admits the key
                int refused = ~admitted & all;
                if (heads == 1 && g0 <= lanes) {
                    math.refuseRows(s, j * rowsPad, refused & 0xffffffffL); // one vector of the key's rows
                    continue;
                }
                for (int bits = refused; bits != 0; bits &= bits - 1) {
                    int i = Integer.numberOfTrailingZeros(bits);
                    for (int g = 0, at = j * rowsPad + i; g < heads; g++, at += g0) {
                        s[at] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
            math.softmax(s, rowsPad, n, rowsPad, sc.m, sc.l, sc.alpha);
            math.accumulate(s, rowsPad, n, rows, sc.vRows, sc.vOff, cols, sc.o, cols, sc.alpha, sc.fresh, null, null,
                    null);
            sc.fresh = false;
        }
        for (int g = 0; g < heads; g++) {
            for (int i = 0; i < g0; i++) {
                int r = g * g0 + i;
                int row = lay.row(t0 + i, 0);
                float rowLse;
                if (outF32 != null) {
                    rowLse = finishRow(sc, r, outF32, (int) (outF32Base + out.index(b, h0 + g, row, 0)), lse != null,
                            false);
                } else {
                    rowLse = finishRow(sc, r, sc.row, 0, lse != null, false);
                    writeOut(b, h0 + g, row, sc.row, 0, sc.raw);
                }
                if (lse != null) {
                    lse.set(b, h0 + g, row, 0, rowLse);
                }
            }
        }
    }

    /**
     * One past the last tile of the block tiles from {@code t} on (at most {@link #shareTiles}, before
     * {@code tileEnd}) that may share their K/V blocks: tiles of key blocks (at least one) in the wide
     * form, none of which runs in a {@linkplain #computeGroup group}.
     */
    private int shareEnd(HeadLayout lay, int t, int tileEnd, int heads) {
        int end = t;
        int last = Math.min(tileEnd, t + shareTiles);
        int rows = 0;
        while (end < last && !math.narrow(heads * lay.rowCount(end))
                && keyBlocks(lay, end) > 0
                && (rows += roundUp(heads * lay.rowCount(end), lanes)) <= SHARE_ROWS) {
            end++;
        }
        return end;
    }

    /**
     * Whether block tiles {@code t0 .. t1−1} run {@linkplain #computeShared sharing} their K/V blocks:
     * leaves in {@code sc} the order in which their blocks are then loaded ({@code sc.shareSteps}
     * loads: block {@code sc.shareBlock[i]} for the tiles of bit mask {@code sc.shareTiles[i]}) and
     * says whether the tiles' block visits are at least {@link #shareMin} times those loads. The
     * order keeps every tile's own: each step loads the next block of the first tile that has blocks
     * left and runs it for every tile whose next block it is. Tiles of a dense or causal run visit
     * the same blocks in the same order, so each load serves every tile that holds the block; tiles of
     * a random block-sparse plan share few blocks and run alone.
     */
    boolean sharePays(HeadLayout lay, int t0, int t1, Scratch sc) {
        int tiles = t1 - t0;
        int[] pos = sc.sharePos;
        int[] blocks = sc.shareBlocks;
        int visits = 0;
        for (int i = 0; i < tiles; i++) {
            int t = t0 + i;
            pos[i] = 0;
            blocks[i] = keyBlocks(lay, t);
            visits += blocks[i];
        }
        sc.ensureShare(visits);
        int steps = 0;
        for (int first = 0; ; ) {
            while (first < tiles && pos[first] == blocks[first]) {
                first++;
            }
            if (first == tiles) {
                break;
            }
            int blk = blockOf(lay, t0 + first, pos[first]);
            int mask = 0;
            for (int i = first; i < tiles; i++) {
                if (pos[i] < blocks[i] && blockOf(lay, t0 + i, pos[i]) == blk) {
                    mask |= 1 << i;
                    pos[i]++;
                }
            }
            sc.shareBlock[steps] = blk;
            sc.shareTiles[steps] = mask;
            steps++;
        }
        sc.shareSteps = steps;
        return visits >= (long) shareMin * steps;
    }

    /**
     * Block tiles {@code t0 .. t1−1}, each in its own scratch, in the load order {@link #sharePays}
     * left in {@code sc}: each K/V block is converted once into {@code sc} and every tile whose next
     * block it is runs its chunk on it; then each tile's listed chunks, if any, in its own order. Every
     * tile runs exactly its own chunks in its own order ({@link #computeTile}'s arithmetic), so the bits
     * do not change; what changes is that a block is converted once for the tiles that share it
     * instead of once per tile. Before each block's conversion the next one is {@linkplain #touchAhead
     * touched}, and before the last the first block (and queries) of tile {@code t1}.
     */
    private void computeShared(HeadLayout lay, int t0, int t1, int b, int h0, int heads, Scratch sc, boolean direct,
                               int tileEnd) {
        Scratch[] group = GROUP.get();
        int tiles = t1 - t0;
        int[] pos = sc.sharePos;
        int[] full = sc.shareFull;
        int[] chunks = sc.shareChunks;
        int most = 0;
        for (int i = 0; i < tiles; i++) {
            int t = t0 + i;
            chunks[i] = beginTile(lay, t, b, h0, heads, group[i], direct);
            full[i] = lay.fullEnd(t) - lay.fullStart(t);
            pos[i] = 0;
            most = Math.max(most, roundUp(heads * lay.rowCount(t), lanes));
        }
        sc.ensure(most, blockCols, dim, cols, ldR);
        int kvh = shape.kvHeadOf(h0);
        int steps = sc.shareSteps;
        for (int step = 0; step < steps; step++) {
            int blk = sc.shareBlock[step];
            if (step + 1 < steps) {
                sc.touched = touchBlock(lay, sc.shareBlock[step + 1], b, kvh);
            } else {
                touchAhead(lay, t1 - 1, -1, tileEnd, b, h0, heads, sc);
            }
            int k0 = lay.blockStartKey(blk);
            int n = lay.blockWidth(blk);
            loadBlock(b, kvh, k0, n, sc);
            for (int bits = sc.shareTiles[step]; bits != 0; bits &= bits - 1) {
                int i = Integer.numberOfTrailingZeros(bits);
                int count = lay.rowCount(t0 + i);
                int c = pos[i]++;
                chunk(lay, group[i], sc, n, count, heads, roundUp(heads * count, lanes), c >= full[i], false, k0,
                        false);
            }
        }
        for (int i = 0; i < tiles; i++) {
            int t = t0 + i;
            int blocks = full[i] + lay.partialEnd(t) - lay.partialStart(t);
            for (int c = blocks; c < chunks[i]; c++) {
                runChunk(lay, t, b, heads, group[i], c);
            }
        }
        for (int i = 0; i < tiles; i++) {
            emitTile(lay, t0 + i, b, h0, heads, group[i]);
        }
    }

    /** Whether tile {@code t} of {@code heads} stacked heads may run in a {@linkplain #computeGroup group}. */
    private boolean groupable(HeadLayout lay, int t, int heads) {
        return math.narrow(heads * lay.rowCount(t))
                && (lay.gatherEnd(t) > lay.gatherStart(t) || lay.unconditionalEnd(t) > lay.unconditionalStart(t));
    }

    /**
     * Reads tile {@code t}'s query rows into {@code sc} and resets its softmax state; returns the
     * number of its key chunks (full blocks, partial blocks, then gathered and unconditional keys in
     * chunks of {@code blockCols}), which {@link #runChunk} runs by index.
     */
    private int beginTile(HeadLayout lay, int t, int b, int h0, int heads, Scratch sc, boolean direct) {
        int count = lay.rowCount(t);
        int rows = heads * count;
        int rowsPad = roundUp(rows, lanes);
        sc.ensure(rowsPad, blockCols, dim, cols, ldR);
        int kvh = shape.kvHeadOf(h0);
        sc.kvHead = kvh;
        int offset = lay.queryOffset();
        float[] buf = sc.row;
        boolean narrow = math.narrow(rows);
        if (!narrow) {
            // the rows read (or widened) row-major into sc.qR, then scaled and transposed (gathering
            // them from the caller's array in place was measured slower: a bulk copy per row streams)
            int[] rowAt = sc.rowAt;
            // f32 heap rows that lie back to back (a contiguous tile, rows of stride dim): one copy per head
            boolean block = qF32 != null && !lay.isListed(t) && q.stride(2) == dim;
            for (int g = 0; block && g < heads; g++) {
                System.arraycopy(qF32, (int) (qF32Base + q.index(b, h0 + g, lay.rowStart(t), 0)), sc.qR,
                        g * count * dim, count * dim);
            }
            for (int g = 0; g < heads; g++) {
                for (int i = 0; i < count; i++) {
                    int row = lay.row(t, i);
                    int r = g * count + i;
                    rowAt[r] = r * dim;
                    if (block) {
                        // copied above
                    } else if (qF32 != null) {
                        System.arraycopy(qF32, (int) (qF32Base + q.index(b, h0 + g, row, 0)), sc.qR, r * dim, dim);
                    } else if (qArray != null) {
                        widen(q.dtype(), (short[]) qArray, (int) (qArrayBase + q.index(b, h0 + g, row, 0)), sc.qR,
                                r * dim, dim);
                    } else {
                        queryRow(b, h0 + g, row, sc.qR, r * dim);
                    }
                    sc.qPos[r] = (long) row + offset;
                }
            }
            math.transposeScaled(sc.qR, rowAt, rows, rowsPad, dim, scale, sc.qT);
        }
        // the narrow form: row-major and scaled (its chunks never read the transposed rows)
        for (int g = 0; narrow && g < heads; g++) {
            for (int i = 0; i < count; i++) {
                int row = lay.row(t, i);
                int r = g * count + i;
                if (qArray != null) {
                    widen(q.dtype(), (short[]) qArray, (int) (qArrayBase + q.index(b, h0 + g, row, 0)), buf, 0, dim);
                } else {
                    queryRow(b, h0 + g, row, buf, 0);
                }
                for (int d = 0, at = r * dim; d < dim; d++, at++) {
                    sc.qR[at] = buf[d] * scale;
                }
                sc.qPos[r] = (long) row + offset;
            }
        }
        Scratch.fill(sc.m, rowsPad, Float.NEGATIVE_INFINITY);
        Scratch.fill(sc.l, rowsPad, 0f);
        sc.fresh = true; // the first chunk's P·V writes sc.o without reading it
        int gathered = lay.gatherEnd(t) - lay.gatherStart(t);
        int listed = lay.unconditionalEnd(t) - lay.unconditionalStart(t);
        sc.chunksLeft = keyBlocks(lay, t)
                + (gathered + blockCols - 1) / blockCols + (listed + blockCols - 1) / blockCols;
        // an f32 heap output whose rows are exactly the value dim: the last chunk's P·V divides each
        // row by its sum and writes it there, while the row's accumulators are still in registers
        sc.direct = direct && !narrow && sc.chunksLeft > 0 ? outF32 : null;
        for (int g = 0; sc.direct != null && g < heads; g++) {
            for (int i = 0; i < count; i++) {
                sc.outAt[g * count + i] = (int) (outF32Base + out.index(b, h0 + g, lay.row(t, i), 0));
            }
        }
        return sc.chunksLeft;
    }

    /**
     * Runs chunk {@code c} of tile {@code t} (in the order {@link #beginTile} counts them) on the tile's
     * state in {@code sc}.
     */
    private void runChunk(HeadLayout lay, int t, int b, int heads, Scratch sc, int c) {
        int count = lay.rowCount(t);
        int rowsPad = roundUp(heads * count, lanes);
        int kvh = sc.kvHead;
        int full = lay.fullEnd(t) - lay.fullStart(t);
        if (c < full) {
            int blk = lay.fullBlock(lay.fullStart(t) + c);
            int k0 = lay.blockStartKey(blk);
            int n = lay.blockWidth(blk);
            loadBlock(b, kvh, k0, n, sc);
            chunk(lay, sc, sc, n, count, heads, rowsPad, false, false, k0, false);
            return;
        }
        c -= full;
        int partial = lay.partialEnd(t) - lay.partialStart(t);
        if (c < partial) {
            int blk = lay.partialBlock(lay.partialStart(t) + c);
            int k0 = lay.blockStartKey(blk);
            int n = lay.blockWidth(blk);
            loadBlock(b, kvh, k0, n, sc);
            chunk(lay, sc, sc, n, count, heads, rowsPad, true, false, k0, false);
            return;
        }
        c -= partial;
        int gathered = (lay.gatherEnd(t) - lay.gatherStart(t) + blockCols - 1) / blockCols;
        if (c < gathered) {
            int g0 = lay.gatherStart(t) + c * blockCols;
            int n = Math.min(blockCols, lay.gatherEnd(t) - g0);
            for (int j = 0; j < n; j++) {
                sc.keys[j] = lay.gatherKey(g0 + j);
                sc.bias[j] = lay.gatherLogWeight(g0 + j);
            }
            loadListed(b, kvh, n, sc);
            chunk(lay, sc, sc, n, count, heads, rowsPad, true, lay.hasGatherLogWeights(), -1, true);
            return;
        }
        c -= gathered;
        int u0 = lay.unconditionalStart(t) + c * blockCols;
        int n = Math.min(blockCols, lay.unconditionalEnd(t) - u0);
        boolean weighted = false;
        for (int j = 0; j < n; j++) {
            sc.keys[j] = lay.unconditionalKey(u0 + j);
            sc.bias[j] = lay.unconditionalLogWeight(u0 + j);
            weighted |= sc.bias[j] != 0f;
        }
        loadListed(b, kvh, n, sc);
        chunk(lay, sc, sc, n, count, heads, rowsPad, false, weighted, -1, true);
    }

    /**
     * One chunk of {@code n} keys against the stacked rows of the tile whose state {@code sc} holds; the
     * keys' rows (and the scores' room) are {@code kv}'s: {@code sc} itself, or the scratch whose
     * converted block every tile of a {@linkplain #computeShared shared run} reads. The bits depend
     * only on the rows' values, not on which scratch holds them.
     */
    private void chunk(HeadLayout lay, Scratch sc, Scratch kv, int n, int count, int heads, int rowsPad,
                       boolean masked, boolean weighted, int k0, boolean listed) {
        int rows = heads * count;
        if (math.narrow(rows)) {
            narrowChunk(lay, sc, kv, n, count, heads, rowsPad, masked, weighted, k0, listed);
            return;
        }
        float[] s = kv.s;
        math.scores(sc.qT, rowsPad, rowsPad, kv.kRows, kv.kOff, dim, n, s, rowsPad);
        if (softCap > 0f) {
            math.softCap(s, rowsPad, n, rowsPad, softCap);
        }
        if (weighted) {
            math.addKeyBias(s, rowsPad, n, rowsPad, sc.bias);
        }
        if (masked) {
            mask(lay.predicate(), s, sc, n, count, heads, 1, rowsPad, k0, listed);
        }
        math.softmax(s, rowsPad, n, rowsPad, sc.m, sc.l, sc.alpha);
        float[] dst = --sc.chunksLeft == 0 ? sc.direct : null;
        math.accumulate(s, rowsPad, n, rows, kv.vRows, kv.vOff, cols, sc.o, cols, sc.alpha, sc.fresh, dst, sc.outAt,
                sc.l);
        sc.fresh = false;
    }

    /**
     * The narrow form of {@link #chunk}: scores and softmax row-major, vectorised along the keys
     * (row {@code r} at {@code sc.sR[r·ldR]}), then the probabilities transposed for the P·V step.
     */
    private void narrowChunk(HeadLayout lay, Scratch sc, Scratch kv, int n, int count, int heads, int rowsPad,
                             boolean masked, boolean weighted, int k0, boolean listed) {
        int rows = heads * count;
        float[] sr = sc.sR;
        math.scoresByRow(sc.qR, rows, kv.kRows, kv.kOff, dim, n, sr, ldR);
        if (softCap > 0f) {
            math.softCap(sr, ldR, rows, ldR, softCap); // elementwise over the rows × ldR block
        }
        if (weighted) {
            for (int r = 0; r < rows; r++) {
                for (int j = 0, at = r * ldR; j < n; j++, at++) {
                    sr[at] += sc.bias[j];
                }
            }
        }
        if (masked) {
            mask(lay.predicate(), sr, sc, n, count, heads, ldR, 1, k0, listed);
        }
        math.softmaxByRow(sr, ldR, n, rows, sc.m, sc.l, sc.alpha);
        if (rows == 1) {
            // one row: its probabilities are already key after key (P·V reads key j at j·ldS)
            math.accumulate(sr, 1, n, 1, kv.vRows, kv.vOff, cols, sc.o, cols, sc.alpha, sc.fresh, null, null, null);
            sc.fresh = false;
            return;
        }
        float[] s = kv.s;
        for (int j = 0; j < n; j++) {
            for (int r = 0, at = j * rowsPad; r < rows; r++, at++) {
                s[at] = sr[r * ldR + j];
            }
        }
        math.accumulate(s, rowsPad, n, rows, kv.vRows, kv.vOff, cols, sc.o, cols, sc.alpha, sc.fresh, null, null,
                null);
        sc.fresh = false;
    }

    /**
     * Sets the scores of pairs the predicate refuses to −∞ (same decision for every stacked head);
     * stacked row {@code r} and key {@code j} sit at {@code s[r·rowStride + j·keyStride]}.
     */
    private void mask(ElementPredicate p, float[] s, Scratch sc, int n, int count, int heads, int rowStride,
                      int keyStride, int k0, boolean listed) {
        long[] qPos = sc.qPos;
        boolean causalOnly = p.onlyCausal() && p.sinks() == 0;
        if (causalOnly && !p.causal()) {
            return;
        }
        for (int j = 0; j < n; j++) {
            int kPos = listed ? sc.keys[j] : k0 + j;
            int base = j * keyStride;
            for (int i = 0; i < count; i++) {
                boolean admit = causalOnly ? qPos[i] >= kPos : p.admits(qPos[i], kPos, keyLength);
                if (!admit) {
                    for (int g = 0, at = base + i * rowStride; g < heads; g++, at += count * rowStride) {
                        s[at] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
    }

    // ================================================================== K/V loading

    /** One word in every this many floats (4 KiB) is read by {@link #touchAhead}. */
    private static final int TOUCH_STRIDE = 1024;

    /**
     * Reads one word per 4 KiB of the f32 heap K and V rows of the block that follows: block chunk
     * {@code c} of tile {@code t}, or with {@code c < 0} the first block of tile {@code t + 1} (if it is
     * before {@code tileEnd}) together with that tile's query rows. Called before the current block is
     * copied, so these reads miss together with the copy's own instead of stalling the arithmetic:
     * the next copy then finds the pages' translations cached and their first lines (with what the
     * hardware prefetcher fetched after them) nearer; on a random block-sparse plan a block's rows are
     * rarely the ones the copy before it streamed. The words are summed into {@code sc.touched},
     * which nothing reads. Rows that do not lie back to back (another layout, 16-bit or off-heap
     * tensors) are not touched; the arithmetic, and so the bits, do not change.
     */
    private void touchAhead(HeadLayout lay, int t, int c, int tileEnd, int b, int h0, int heads, Scratch sc) {
        if (!touchKv) {
            return;
        }
        float acc = 0f;
        int nt = t;
        if (c < 0) {
            nt = t + 1;
            c = 0;
            if (nt >= tileEnd || keyBlocks(lay, nt) == 0) {
                return;
            }
            if (qF32 != null && !lay.isListed(nt) && q.stride(2) == dim) {
                int qn = lay.rowCount(nt) * dim;
                for (int g = 0; g < heads; g++) {
                    acc += touch(qF32, (int) (qF32Base + q.index(b, h0 + g, lay.rowStart(nt), 0)), qn);
                }
            }
        }
        sc.touched = acc + touchBlock(lay, blockOf(lay, nt, c), b, shape.kvHeadOf(h0));
    }

    /**
     * The sum of one word per 4 KiB of block {@code blk}'s K and V rows ({@link #touchAhead}'s reads),
     * or 0 where those rows are not f32 heap rows that lie back to back.
     */
    private float touchBlock(HeadLayout lay, int blk, int b, int kvh) {
        if (!touchKv) {
            return 0f;
        }
        int k0 = lay.blockStartKey(blk);
        int n = lay.blockWidth(blk);
        return touch(kF32, (int) (kF32Base + k.index(b, kvh, k0, 0)), n * dim)
                + touch(vF32, (int) (vF32Base + v.index(b, kvh, k0, 0)), n * valueDim);
    }

    /** Tile {@code t}'s key blocks, full and partial: its block chunks, which {@link #blockOf} numbers. */
    private static int keyBlocks(HeadLayout lay, int t) {
        return lay.fullEnd(t) - lay.fullStart(t) + lay.partialEnd(t) - lay.partialStart(t);
    }

    /** Block chunk {@code c} of tile {@code t}: its full blocks first, then its partial ones. */
    private static int blockOf(HeadLayout lay, int t, int c) {
        int full = lay.fullEnd(t) - lay.fullStart(t);
        return c < full ? lay.fullBlock(lay.fullStart(t) + c) : lay.partialBlock(lay.partialStart(t) + c - full);
    }

    /** The sum of {@code a[at]}, every {@link #TOUCH_STRIDE}-th float after it before {@code at + n}, and the last. */
    private static float touch(float[] a, int at, int n) {
        float acc = a[at + n - 1];
        for (int i = 0; i < n; i += TOUCH_STRIDE) {
            acc += a[at + i];
        }
        return acc;
    }

    private void loadBlock(int b, int kvh, int k0, int n, Scratch sc) {
        sc.kRows = loadRows(k, kArray, kArrayBase, b, kvh, k0, null, n, dim, dim, sc.k, sc.kOff, sc.raw);
        sc.vRows = loadRows(v, vArray, vArrayBase, b, kvh, k0, null, n, valueDim, cols, sc.v, sc.vOff, sc.raw);
    }

    /**
     * Listed keys: f32 heap rows are read where they lie (a copy per scattered row costs more than
     * the arithmetic on it when few rows share the chunk, as in token gather); anything else is
     * converted into the scratch copy.
     */
    private void loadListed(int b, int kvh, int n, Scratch sc) {
        if (kF32 != null) {
            for (int j = 0; j < n; j++) {
                sc.kOff[j] = (int) (kF32Base + k.index(b, kvh, sc.keys[j], 0));
            }
            sc.kRows = kF32;
        } else {
            sc.kRows = loadRows(k, kArray, kArrayBase, b, kvh, 0, sc.keys, n, dim, dim, sc.k, sc.kOff, sc.raw);
        }
        if (vF32 != null) {
            for (int j = 0; j < n; j++) {
                sc.vOff[j] = (int) (vF32Base + v.index(b, kvh, sc.keys[j], 0));
            }
            sc.vRows = vF32;
        } else {
            sc.vRows = loadRows(v, vArray, vArrayBase, b, kvh, 0, sc.keys, n, valueDim, cols, sc.v, sc.vOff, sc.raw);
        }
    }

    /** Query row (b, h, row) as f32 into {@code dst[at ..]}: e4m3 rows widened in vectors, others by the tensor. */
    private void queryRow(int b, int h, int row, float[] dst, int at) {
        if (q.dtype() == DType.E4M3 && q.stride(3) == 1) {
            WidenedRows.e4m3(math, q.segment(), q.index(b, h, row, 0), q.scale(h), dst, at, dim);
        } else {
            q.readRow(b, h, row, dst, at);
        }
    }

    /**
     * The float[] behind an f32 heap tensor whose rows can be read in place: unit last stride and
     * {@code width} readable floats from every row's start (the value rows are read {@code cols}
     * wide, rounded up to the lanes), else null.
     */
    private static float[] inPlaceF32(Tensor t, int width) {
        if (t.dtype() != DType.F32 || t.stride(3) != 1 || !(t.segment().heapBase().orElse(null) instanceof float[] a)) {
            return null;
        }
        long end = t.segment().address() / 4 + t.index(t.batch() - 1, t.heads() - 1, Math.max(0, t.seqLen() - 1), 0) + width;
        return end <= a.length ? a : null;
    }

    /**
     * Converts {@code n} rows of {@code t} (keys {@code k0..k0+n-1}, or {@code keys[0..n)}) to f32 in
     * {@code dst} with leading dimension {@code ld}, row {@code j} at {@code off[j] = j·ld}, and
     * returns {@code dst}. Always a compact copy, also for f32: a bulk copy streams the rows in with
     * the hardware prefetcher, after which the micro-kernels read them from L1/L2 (measured faster
     * than reading a heap array in place, by about a third on random block-sparse plans).
     */
    private float[] loadRows(Tensor t, Object array, long arrayBase, int b, int h, int k0, int[] keys, int n,
                             int width, int ld, float[] dst, int[] off, short[] raw) {
        for (int j = 0; j < n; j++) {
            off[j] = j * ld;
        }
        DType type = t.dtype();
        if (type == DType.E4M3) {
            for (int j = 0; j < n; j++) {
                int row = keys == null ? k0 + j : keys[j];
                if (t.stride(3) == 1) {
                    WidenedRows.e4m3(math, t.segment(), t.index(b, h, row, 0), t.scale(h), dst, j * ld, width);
                } else {
                    t.readRow(b, h, row, dst, j * ld);
                }
            }
            return dst;
        }
        boolean bulk = keys == null && ld == width && t.stride(2) == width;
        if (type == DType.F32) {
            MemorySegment seg = t.segment();
            if (bulk) {
                MemorySegment.copy(seg, F32, t.index(b, h, k0, 0) * 4, dst, 0, n * width);
                return dst;
            }
            for (int j = 0; j < n; j++) {
                MemorySegment.copy(seg, F32, t.index(b, h, keys == null ? k0 + j : keys[j], 0) * 4, dst, j * ld, width);
            }
            return dst;
        }
        short[] src = (short[]) array;
        if (bulk && src != null) {
            widen(type, src, (int) (arrayBase + t.index(b, h, k0, 0)), dst, 0, n * width);
            return dst;
        }
        for (int j = 0; j < n; j++) {
            long at = t.index(b, h, keys == null ? k0 + j : keys[j], 0);
            if (src == null) {
                // off-heap (or not a short[]) 16-bit rows: bring them into a short[] first
                MemorySegment.copy(t.segment(), I16, at * 2, raw, 0, width);
                widen(type, raw, 0, dst, j * ld, width);
            } else {
                widen(type, src, (int) (arrayBase + at), dst, j * ld, width);
            }
        }
        return dst;
    }

    private void widen(DType type, short[] src, int srcAt, float[] dst, int dstAt, int n) {
        if (type == DType.BF16) {
            math.widenBf16(src, srcAt, dst, dstAt, n);
        } else {
            math.widenF16(src, srcAt, dst, dstAt, n);
        }
    }

    static int roundUp(int x, int unit) {
        return (x + unit - 1) / unit * unit;
    }
}
