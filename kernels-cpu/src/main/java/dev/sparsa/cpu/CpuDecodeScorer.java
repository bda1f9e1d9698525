package dev.sparsa.cpu;

import dev.sparsa.kv.DecodeScorer;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * {@link DecodeScorer} on the CPU for host caches of every type: Quest's bounds from the page bounds
 * and top-k's key scores through the decode arithmetic ({@link DecodeMath}), reading f32 and bf16 rows
 * in place (through the block table for a paged cache); rows of a cache in native memory are copied to
 * the heap first (decode reads them in place), and f16 and e4m3 rows (e4m3 under their head's scale)
 * are widened to f32 first ({@link WidenedRows}), so such a cache is scored as an f32 cache of the same
 * values.
 * Thread-safe for calls that write distinct scores (distinct (sequence, head) pairs, or distinct ranges
 * of pages or keys): working memory is per call of a method or per thread, and the query vectors, made
 * once per (sequence, head), are only read.
 */
final class CpuDecodeScorer implements DecodeScorer {
    /**
     * The calling thread's f32 copy of a run of f16 or e4m3 page bounds (512 KiB at 64 pages, 8 KV heads,
     * head dim 128), kept between calls: a decode loop selects every step, several pieces of pages each.
     */
    private static final ThreadLocal<float[]> WIDE_BOUNDS = ThreadLocal.withInitial(() -> new float[0]);
    private final DecodeMath math;
    private final TileMath tiles;
    private final Tensor q;
    private final CacheRows rows;
    private final Tensor bounds;
    private final int group;
    private final int queryRows;
    private final int dim;
    private final int ldQ;
    private final int kvHeads;
    /** Whether rows and bounds are widened to f32 before the arithmetic (f16 and e4m3 caches). */
    private final boolean widens;
    /** Each KV head's scale of the page bounds (e4m3; 1 for other types), as widening them takes it. */
    private final float[] headScales;
    /**
     * Each (sequence, KV head)'s query vectors, made on first use and kept for the scorer's life (one
     * selection): the scoring methods run once per piece of pages or keys, often many per head.
     * Threads that race make the same values; the first to publish wins.
     */
    private final AtomicReferenceArray<QueryVectors> vectorsMade;

    /**
     * A (sequence, KV head)'s query vectors as the kernels take them (never written once made), and
     * whether Quest's bounds may be taken by their sign ({@link DecodeMath#boundsBySign}).
     */
    private record QueryVectors(float[] values, boolean bySign) {
    }

    CpuDecodeScorer(DecodeMath math, TileMath tiles, Tensor q, KvCache cache) {
        this.math = math;
        this.tiles = tiles;
        this.q = q;
        this.rows = new CacheRows(cache);
        this.bounds = cache instanceof PagedKvCache p ? p.pageBounds() : null;
        this.group = q.heads() / cache.kvHeads();
        this.queryRows = q.seqLen();
        this.dim = cache.headDim();
        this.ldQ = (dim + 15) / 16 * 16;
        this.kvHeads = cache.kvHeads();
        this.widens = cache.dtype() == DType.F16 || cache.dtype().isScaled();
        this.headScales = new float[kvHeads];
        for (int g = 0; g < kvHeads; g++) {
            headScales[g] = bounds != null && bounds.dtype().isScaled() ? bounds.scale(g) : 1f;
        }
        this.vectorsMade = new AtomicReferenceArray<>(cache.batch() * kvHeads);
    }

    /** Whether the scorer takes this cache: any host cache. */
    static boolean covers(KvCache cache) {
        return cache.device().isHost();
    }

    private int vectors() {
        return group * queryRows;
    }

    /** The query vectors of (sequence, KV head), made once. */
    private QueryVectors queries(int b, int g) {
        int u = b * kvHeads + g;
        QueryVectors made = vectorsMade.get(u);
        if (made == null) {
            made = makeQueries(b, g);
            if (!vectorsMade.compareAndSet(u, null, made)) {
                made = vectorsMade.get(u);
            }
        }
        return made;
    }

    private QueryVectors makeQueries(int b, int g) {
        int nq = vectors();
        float[] v = new float[(nq + 3) / 4 * 4 * ldQ];
        for (int hh = 0; hh < group; hh++) {
            for (int r = 0; r < queryRows; r++) {
                q.readRow(b, g * group + hh, r, v, (hh * queryRows + r) * ldQ);
            }
        }
        return new QueryVectors(v, DecodeMath.boundsBySign(v, ldQ, nq, dim));
    }

    @Override
    public void questBounds(int b, int g, int[] pages, int count, float[] out) {
        int nq = vectors();
        QueryVectors made = queries(b, g);
        float[] v = made.values();
        boolean bySign = made.bySign();
        DType stored = bounds.dtype();
        long storedBytes = stored.byteSize();
        MemorySegment pool = bounds.segment();
        // runs of pages: their bound rows read once, then the arithmetic on cached lines (a read that
        // misses stalls the arithmetic queued behind it; the JVM has no prefetch instruction). f16 and e4m3
        // rows are widened to f32, and a native pool's rows copied to the heap, a run at a time, so that a
        // call allocates no more than a run's worth (a decode loop calls this every step for every KV head)
        int run = DecodeScratch.BLOCK;
        boolean copies = widens || pool.isNative();
        DType type = widens ? DType.F32 : stored;
        long e = type.byteSize();
        MemorySegment seg = pool;
        float[] wide = null;
        if (copies && count > 0) {
            if (widens) {
                wide = WIDE_BOUNDS.get();
                if (wide.length < 2 * run * dim) {
                    wide = new float[2 * run * dim];
                    WIDE_BOUNDS.set(wide);
                }
                seg = MemorySegment.ofArray(wide);
            } else {
                seg = type == DType.F32 ? MemorySegment.ofArray(new float[2 * run * dim])
                        : MemorySegment.ofArray(new short[2 * run * dim]);
            }
        }
        float scale = stored.isScaled() ? bounds.scale(g) : 1f;
        long[] rowOff = copies ? new long[2 * run] : null;
        long[] runMin = new long[run];
        long[] runMax = new long[run];
        float[] runOut = new float[(nq + 3) / 4 * 4 * run];
        for (int i0 = 0; i0 < count; i0 += run) {
            int n = Math.min(run, count - i0);
            for (int i = 0; i < n; i++) {
                runMin[i] = bounds.index(pages[i0 + i], g, 0, 0) * storedBytes;
                runMax[i] = bounds.index(pages[i0 + i], g, 1, 0) * storedBytes;
            }
            if (copies) {
                // a page's min row, then its max row: rows 2i and 2i + 1 of the copy
                for (int i = 0; i < n; i++) {
                    rowOff[2 * i] = runMin[i];
                    rowOff[2 * i + 1] = runMax[i];
                }
                if (widens) {
                    WidenedRows.widenRows(tiles, pool, stored, rowOff, 2 * n, scale, wide, 0, dim);
                } else {
                    for (int r = 0; r < 2 * n; r++) {
                        MemorySegment.copy(pool, rowOff[r], seg, r * dim * e, dim * e);
                    }
                }
                for (int i = 0; i < n; i++) {
                    runMin[i] = 2L * i * dim * e;
                    runMax[i] = (2L * i + 1) * dim * e;
                }
            }
            if (!copies) {
                // copied rows were just written, so their lines are cached already
                math.readRows(seg, runMin, dim, seg, runMax, dim, type, n);
            }
            math.questBounds(v, ldQ, nq, dim, seg, runMin, runMax, type, n, runOut, run, bySign);
            maxOverVectors(runOut, run, nq, n, out, i0);
        }
    }

    /**
     * Every head's bounds from one read of the pool's bounds where they hold every head's rows of a
     * page back to back ({@code [pages, kvHeads, 2, headDim]}, no padding): the pages are taken in runs,
     * each run's bounds read once, page after page (the pool in address order where the block table
     * is; pages scattered in the pool are read a few at a time, {@link ReadOrder#ranges}), or, in native
     * memory or as f16 or e4m3 bounds, copied to the heap page by page (widened to f32 on the way), then
     * each head computes its bounds on those lines. Head by head, each page gives a head two rows a whole
     * page of bounds apart (4–8 KiB at 8 KV heads, head dim 128), each a new prefetch stream. The bounds
     * are those of the one-head method (the same arithmetic per page on the same f32 or bf16 values).
     */
    @Override
    public void questBounds(int b, int[] heads, int[] pages, int from, int to, float[][] out) {
        if (!readsBoundsWhole()) {
            DecodeScorer.super.questBounds(b, heads, pages, from, to, out);
            return;
        }
        DType stored = bounds.dtype();
        MemorySegment pool = bounds.segment();
        int nq = vectors();
        float[][] v = new float[heads.length][];
        boolean[] bySign = new boolean[heads.length];
        for (int i = 0; i < heads.length; i++) {
            QueryVectors made = queries(b, heads[i]);
            v[i] = made.values();
            bySign[i] = made.bySign();
        }
        long storedBytes = stored.byteSize();
        int pageElements = (int) bounds.stride(0);
        long storedPageBytes = pageElements * storedBytes;
        int run = DecodeScratch.BLOCK;
        // the type the arithmetic reads: f16 and e4m3 bounds are widened to f32 on the heap, and a native
        // pool's run is copied to the heap, where the array kernels read it
        DType type = widens ? DType.F32 : stored;
        long e = type.byteSize();
        long pageBytes = pageElements * e;
        long maxRow = bounds.stride(2) * e;
        boolean copies = widens || pool.isNative();
        float[] wide = null;
        if (widens) {
            wide = WIDE_BOUNDS.get();
            if (wide.length < run * pageElements) {
                wide = new float[run * pageElements];
                WIDE_BOUNDS.set(wide);
            }
        }
        MemorySegment seg = !copies ? pool : widens ? MemorySegment.ofArray(wide) : type == DType.F32
                ? MemorySegment.ofArray(new float[run * pageElements]) : MemorySegment.ofArray(new short[run * pageElements]);
        long[] pageOff = new long[run];
        // a page's bounds as rows of one head's min or max, for a read pass over scattered pages (made
        // when the first scattered run comes: a pool in address order allocates nothing for it)
        int rowElements = (int) bounds.stride(2);
        long[] readOff = null;
        int[] starts = null;
        long[] minOff = new long[run];
        long[] maxOff = new long[run];
        float[] runOut = new float[(nq + 3) / 4 * 4 * run];
        for (int i0 = from; i0 < to; i0 += run) {
            int n = Math.min(run, to - i0);
            for (int i = 0; i < n; i++) {
                long at = bounds.index(pages[i0 + i], 0, 0, 0) * storedBytes;
                if (!copies) {
                    pageOff[i] = at;
                } else {
                    pageOff[i] = i * pageBytes;
                    if (widens) {
                        widenPage(pool, stored, at, wide, i * pageElements);
                    } else {
                        MemorySegment.copy(pool, at, seg, pageOff[i], storedPageBytes);
                    }
                }
            }
            if (!copies) {
                int rows = -1;
                if (!ReadOrder.inOrder(pageOff, n, pageBytes)) {
                    if (readOff == null) {
                        readOff = new long[run * (pageElements / rowElements)];
                        starts = new int[run + 1];
                    }
                    rows = ReadOrder.ranges(pageOff, n, pageBytes, (int) (rowElements * e), ReadOrder.WAYS, readOff,
                            starts);
                }
                if (rows < 0) {
                    math.readRows(seg, pageOff, pageElements, seg, pageOff, 0, type, n);
                } else {
                    math.readRows(seg, readOff, rowElements, seg, readOff, 0, type, rows);
                }
            }
            for (int h = 0; h < heads.length; h++) {
                long shift = (bounds.index(0, heads[h], 0, 0) - bounds.index(0, 0, 0, 0)) * e;
                for (int i = 0; i < n; i++) {
                    minOff[i] = pageOff[i] + shift;
                    maxOff[i] = minOff[i] + maxRow;
                }
                math.questBounds(v[h], ldQ, nq, dim, seg, minOff, maxOff, type, n, runOut, run, bySign[h]);
                maxOverVectors(runOut, run, nq, n, out[h], i0);
            }
        }
    }

    /**
     * One page's f16 or e4m3 bounds (every head's min and max rows, back to back, at byte offset {@code at}
     * of {@code pool}) as f32 into {@code wide[to ..]}: e4m3 under each head's scale.
     */
    private void widenPage(MemorySegment pool, DType stored, long at, float[] wide, int to) {
        WidenedRows.widenHeads(tiles, pool, stored, at, headScales, kvHeads, (int) bounds.stride(1), wide, to);
    }

    /** Whether the several-head method reads the bounds once for every head (else it calls the one-head method). */
    boolean readsBoundsWhole() {
        return bounds != null && boundsWhole();
    }

    /** Whether the bounds hold every head's min and max rows of a page back to back, with no padding. */
    private boolean boundsWhole() {
        int heads = bounds.shape()[1];
        return bounds.stride(3) == 1 && bounds.stride(2) == dim && bounds.stride(1) == 2L * dim
                && bounds.stride(0) == 2L * heads * dim;
    }

    @Override
    public void keyScores(int b, int g, int from, int to, float[] out) {
        int nq = vectors();
        float[] v = queries(b, g).values();
        int block = DecodeScratch.BLOCK;
        float[] s = new float[(nq + 3) / 4 * 4 * block];
        int[] pos = new int[block];
        long[] kOff = new long[block];
        long[] vOff = new long[block];
        float[] wide = widens ? new float[block * dim] : null;
        for (int k0 = from; k0 < to; k0 += block) {
            int n = Math.min(block, to - k0);
            for (int j = 0; j < n; j++) {
                pos[j] = k0 + j;
            }
            rows.offsets(b, g, pos, n, kOff, vOff);
            // the keys stand in for the values: a selection reads no values
            DType type = widens ? DType.F32 : rows.dtype;
            MemorySegment keys = widens ? widened(rows.keys, rows.dtype, kOff, n, rows.keyScale(g), wide)
                    : onHeap(rows.keys, kOff, n, (long) dim * rows.dtype.byteSize(), rows.dtype);
            math.scores(v, ldQ, nq, dim, keys, kOff, keys, kOff, dim, type, n, s, block, false);
            maxOverVectors(s, block, nq, n, out, k0 - from);
        }
    }

    /**
     * Every head's scores from one read of the keys where the cache is a paged pool on the heap read
     * whole: the keys are taken in runs of whole pages (at least {@value DecodeScratch#BLOCK} keys), each
     * run's pages read once, every head's K rows of them together (the pool in address order where the
     * block table is), then each head scores the run's keys on cached lines (e4m3 rows widened first).
     * Read head by head, a 16-token page gives each head 2–8 KiB pieces 16–64 KiB apart, each a new
     * prefetch stream. The scores are those of the one-head method (the same arithmetic per key).
     */
    @Override
    public void keyScores(int b, int[] heads, int from, int to, float[][] out, int base) {
        if (!rows.readsWholePages() || rows.keys.isNative()) {
            DecodeScorer.super.keyScores(b, heads, from, to, out, base);
            return;
        }
        // f16 and e4m3 rows are widened block by block (e4m3 under each head's scale; their pages are not
        // read ahead: the widening reads them in order)
        float[] wide = widens ? new float[DecodeScratch.BLOCK * dim] : null;
        MemorySegment keys = widens ? MemorySegment.ofArray(wide) : rows.keys;
        DType type = widens ? DType.F32 : rows.dtype;
        int nq = vectors();
        float[][] v = new float[heads.length][];
        for (int i = 0; i < heads.length; i++) {
            v[i] = queries(b, heads[i]).values();
        }
        int block = DecodeScratch.BLOCK;
        int pageSize = rows.pageSize();
        int run = Math.max(block, pageSize);
        float[] s = new float[(nq + 3) / 4 * 4 * block];
        long[] pageK = new long[run / pageSize];
        long[] pageV = new long[run / pageSize];
        int[] pos = new int[run];
        long[] headK = new long[run];
        long[] headV = new long[run];
        long[] kOff = new long[block];
        for (int r = from / run * run; r < to; r += run) {
            int lo = Math.max(r, from);
            int hi = Math.min(r + run, to);
            int firstPage = lo / pageSize * pageSize;
            int pages = rows.pages(b, firstPage, hi - firstPage, pageK, pageV);
            if (!widens) {
                math.readRows(rows.keys, pageK, rows.keyPageElements(), rows.keys, pageK, 0, rows.dtype, pages);
            }
            int n = hi - lo;
            for (int j = 0; j < n; j++) {
                pos[j] = lo + j;
            }
            rows.offsets(b, 0, pos, n, headK, headV);
            for (int i = 0; i < heads.length; i++) {
                long shift = rows.keyHeadShift(heads[i]);
                for (int s0 = 0; s0 < n; s0 += block) {
                    int nb = Math.min(block, n - s0);
                    for (int j = 0; j < nb; j++) {
                        kOff[j] = headK[s0 + j] + shift;
                    }
                    if (widens) {
                        widened(rows.keys, rows.dtype, kOff, nb, rows.keyScale(heads[i]), wide);
                    }
                    math.scores(v[i], ldQ, nq, dim, keys, kOff, keys, kOff, dim, type, nb, s, block, true);
                    maxOverVectors(s, block, nq, nb, out[i], lo + s0 - base);
                }
            }
        }
    }

    /**
     * {@code seg} itself when it is on the heap; else its {@code n} rows of {@code rowBytes} at {@code
     * off} copied into a heap array of {@code type}, {@code off} rewritten to the copy's offsets.
     */
    private static MemorySegment onHeap(MemorySegment seg, long[] off, int n, long rowBytes, DType type) {
        if (!seg.isNative()) {
            return seg;
        }
        int elements = (int) (n * rowBytes / type.byteSize());
        MemorySegment heap = type == DType.F32 ? MemorySegment.ofArray(new float[elements])
                : MemorySegment.ofArray(new short[elements]);
        for (int j = 0; j < n; j++) {
            MemorySegment.copy(seg, off[j], heap, j * rowBytes, rowBytes);
            off[j] = j * rowBytes;
        }
        return heap;
    }

    /**
     * The {@code n} f16 or e4m3 rows of {@code dim} elements at byte offsets {@code off} as f32 rows (e4m3
     * under {@code scale}) in {@code wide} (at least {@code n · dim} floats); {@code off} rewritten to
     * their byte offsets.
     */
    private MemorySegment widened(MemorySegment seg, DType type, long[] off, int n, float scale, float[] wide) {
        WidenedRows.widenRows(tiles, seg, type, off, n, scale, wide, 0, dim);
        for (int j = 0; j < n; j++) {
            off[j] = 4L * j * dim;
        }
        return MemorySegment.ofArray(wide);
    }

    private static void maxOverVectors(float[] s, int ld, int nq, int n, float[] out, int at) {
        System.arraycopy(s, 0, out, at, n);
        for (int x = 1; x < nq; x++) {
            for (int j = 0; j < n; j++) {
                out[at + j] = Math.max(out[at + j], s[x * ld + j]);
            }
        }
    }

    @Override
    public String toString() {
        return "CpuDecodeScorer[" + Arrays.toString(q.shape()) + "]";
    }
}
