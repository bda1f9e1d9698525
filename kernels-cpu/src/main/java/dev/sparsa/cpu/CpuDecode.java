package dev.sparsa.cpu;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KeySpans;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.LseMerge;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One decode call on the CPU. A work unit is one (sequence, KV head): its query vectors (the group's
 * query heads × the step's rows) stream the unit's keys once, in blocks of {@value
 * DecodeScratch#BLOCK}, keys along the lanes ({@link DecodeMath}). The unit's keys are the resolved
 * spans of the selection (all keys for dense decode), cut by the split-KV rule into chunks of equal
 * key count; each chunk is a work item, items run largest first on the backend's workers, and the
 * chunks of a unit are merged through their LSEs in chunk order. Dense decode applies the rule to the
 * sequences instead (one unit per sequence); where that cuts the keys, a work item is one chunk of a
 * sequence for all its KV heads, and a paged cache is then read page by page, every head's rows of a
 * page at once, which are contiguous in the pool ({@link #runPages}). An unsplit batch on such a paged
 * cache goes across heads too, a sequence or a group of its heads an item ({@link #unsplitHeads}). The rule
 * is evaluated with the machine's processor count (not the backend's thread count), so a backend of any
 * thread count gives bitwise the same result on one machine; paged and contiguous caches give bitwise
 * the same result because they are cut alike and only the row offsets, the grouping of a sequence's
 * heads into items and the order of reading ahead differ.
 */
final class CpuDecode {
    /** The most bytes of widened rows that {@link #widensPages} keeps at once (every head's run). */
    static final long WIDENED_PAGES_BYTES = 1L << 20;
    private static final ThreadLocal<DecodeScratch> SCRATCH = ThreadLocal.withInitial(DecodeScratch::new);
    /**
     * The split chunks' partial rows and LSEs, kept per calling thread from one call to the next (a
     * decode loop would otherwise allocate them at every step: most of a dense step's allocation). A
     * thread runs one call at a time, from construction to {@link #mergeSplitUnits}; every slot a call
     * reads it has written first.
     */
    private static final ThreadLocal<float[][]> PARTIALS = ThreadLocal.withInitial(() -> new float[][] {new float[0],
            new float[0]});
    /** Partial rows above this many floats (4 MiB) are allocated per call rather than kept. */
    private static final int KEPT_PARTIALS = 1 << 20;
    /**
     * Each (sequence, KV head)'s key spans, kept per calling thread like {@link #PARTIALS} (a top-k
     * step resolves thousands of spans per head), for calls of at most {@value #KEPT_UNITS} pairs.
     */
    private static final ThreadLocal<KeySpans[]> SPANS = ThreadLocal.withInitial(() -> new KeySpans[0]);
    private static final int KEPT_UNITS = 1024;

    private final DecodeMath math;
    /** Widens f16 and e4m3 rows ({@link WidenedRows}). */
    private final TileMath tiles;
    private final AttentionShape shape;
    private final Tensor q;
    private final Tensor out;
    private final Tensor lse;
    private final CacheRows rows;
    private final int[] lengths;
    private final float scale;
    private final float softCap;
    private final int queryRows;
    private final int group;
    private final int nq;
    private final int dim;
    private final int dimV;
    private final int ldQ;
    private final int ldO;
    private final KeySpans[] spans;
    private final long[] keyCounts;
    private final int chunkKeys;
    /**
     * Dense decode split into chunks of each sequence's keys, or unsplit on a paged pool ({@link
     * #unsplitHeads}): a work item is one (sequence, chunk) with {@link #sequenceHeads} KV heads, so that a
     * paged pool is read page after page (see {@link #runPages}).
     */
    private final boolean acrossHeads;
    /**
     * KV heads per item across heads, by sequence: all of them, or, for an unsplit batch that a sequence an
     * item would leave unbalanced, a group of them (half, a quarter, …) for its shortest sequences or for
     * all, so that the workers finish together; each item reads its heads' rows of every page: one slice of
     * it where the pages hold their heads' rows head after head (HND), a stretch of every token's rows
     * where they hold them token after token (NHD).
     */
    private final int[] sequenceHeads;
    /**
     * Items across heads read the pages of a run whole, all heads at once (paged, pages tile the runs; f16
     * and e4m3 rows: {@link #widensPages}).
     */
    private final boolean wholePages;
    /**
     * Rows are widened into f32 scratch on the heap before the arithmetic, a run (f16) or a block (e4m3)
     * at a time: f16 rows (the Vector API has no f16 lane conversion) and e4m3 rows (under their head's
     * scale). f32 and bf16 rows are read in place, from Java arrays or from native segments alike.
     */
    private final boolean staged;
    /**
     * Whole pages of f16 or e4m3 rows are widened page after page, every head's rows of a page in turn,
     * into a run of rows per head, instead of read whole and then widened head by head: the widening
     * then reads the pool in address order itself. Where every head's widened run fits {@link
     * #WIDENED_PAGES_BYTES}.
     */
    private final boolean widensPages;
    private final int[] chunks;
    /** First partial slot of each unit with more than one chunk, else −1. */
    private final int[] partialBase;
    private final float[] partialOut;
    private final float[] partialLse;

    CpuDecode(DecodeMath math, TileMath tiles, AttentionShape shape, Tensor q, KvCache cache, DecodeSelection selection,
              Tensor out, Tensor lse, DecodeOptions options) {
        this.math = math;
        this.tiles = tiles;
        this.shape = shape;
        this.q = q;
        this.out = out;
        this.lse = lse;
        this.rows = new CacheRows(cache);
        this.lengths = cache.lengths();
        this.scale = (float) options.run().scaleFor(shape.headDim());
        this.softCap = options.run().softCap();
        this.queryRows = shape.queryLength();
        this.group = shape.groupSize();
        this.nq = group * queryRows;
        this.dim = shape.headDim();
        this.dimV = shape.valueDim();
        this.ldQ = roundUp(dim, 16);
        this.ldO = roundUp(dimV, 16);
        int units = shape.batch() * shape.kvHeads();
        KeySpans[] keptSpans = SPANS.get();
        if (units <= KEPT_UNITS && keptSpans.length < units) {
            keptSpans = Arrays.copyOf(keptSpans, units);
            SPANS.set(keptSpans);
        }
        this.spans = units <= KEPT_UNITS ? keptSpans : new KeySpans[units];
        this.keyCounts = new long[units];
        int maxKeys = 0;
        for (int b = 0; b < shape.batch(); b++) {
            for (int g = 0; g < shape.kvHeads(); g++) {
                int u = b * shape.kvHeads() + g;
                KeySpans ks = spans[u] != null ? spans[u] : (spans[u] = new KeySpans());
                ks.clear();
                if (selection == null) {
                    if (lengths[b] > 0) {
                        ks.add(0, lengths[b], KeySpans.UNBANDED);
                    }
                } else {
                    selection.resolve(b, g, lengths[b], queryRows, ks);
                }
                keyCounts[u] = ks.keyCount();
                maxKeys = (int) Math.max(maxKeys, keyCounts[u]);
            }
        }
        int processors = Runtime.getRuntime().availableProcessors();
        // dense decode, and selections that give every KV head of a sequence the same keys (sinks +
        // window): the split rule over sequences (one unit per sequence, all its KV heads); where that cuts
        // the keys into chunks, an item is (sequence, chunk) across heads, else (sequence, head, chunk). An
        // unsplit batch on a paged pool read whole pages at a time also goes across heads (an item per head
        // would read a head's rows of each page apart from the other heads'), a sequence or a group of its
        // heads an item (unsplitHeads)
        int perSequence = options.split().chunkKeys(shape.batch(), 1, maxKeys, processors);
        boolean shared = selection == null || headsShareKeys(spans, shape.batch(), shape.kvHeads());
        boolean split = SplitKv.chunks(maxKeys, perSequence) > 1;
        int[] heads = shared && !split ? unsplitHeads(processors) : null;
        this.acrossHeads = shared && (split || heads != null);
        if (heads == null) {
            heads = new int[shape.batch()];
            Arrays.fill(heads, shape.kvHeads());
        }
        this.sequenceHeads = heads;
        this.chunkKeys = acrossHeads ? perSequence
                : options.split().chunkKeys(shape.batch(), shape.kvHeads(), maxKeys, processors);
        this.staged = rows.dtype == DType.F16 || rows.dtype == DType.E4M3;
        this.wholePages = acrossHeads && rows.pagesTile(DecodeScratch.PAGE_RUN, chunkKeys);
        this.widensPages = wholePages && staged
                && 4L * shape.kvHeads() * DecodeScratch.PAGE_RUN * (ldQ + ldO) <= WIDENED_PAGES_BYTES;
        this.chunks = new int[units];
        this.partialBase = new int[units];
        int slots = 0;
        for (int u = 0; u < units; u++) {
            chunks[u] = SplitKv.chunks(keyCounts[u], chunkKeys);
            partialBase[u] = chunks[u] > 1 ? slots : -1;
            slots += chunks[u] > 1 ? chunks[u] : 0;
        }
        int outFloats = slots * nq * dimV;
        if (outFloats <= KEPT_PARTIALS) {
            float[][] kept = PARTIALS.get();
            if (kept[0].length < outFloats) {
                kept[0] = new float[outFloats];
            }
            if (kept[1].length < slots * nq) {
                kept[1] = new float[slots * nq];
            }
            this.partialOut = kept[0];
            this.partialLse = kept[1];
        } else {
            this.partialOut = new float[outFloats];
            this.partialLse = new float[slots * nq];
        }
    }

    /** Whether every KV head of each sequence has the spans of the sequence's head 0 (starts, ends, bands). */
    private static boolean headsShareKeys(KeySpans[] spans, int batch, int kvHeads) {
        for (int b = 0; b < batch; b++) {
            KeySpans first = spans[b * kvHeads];
            for (int g = 1; g < kvHeads; g++) {
                KeySpans other = spans[b * kvHeads + g];
                if (other.size() != first.size()) {
                    return false;
                }
                for (int i = 0; i < first.size(); i++) {
                    if (other.start(i) != first.start(i) || other.end(i) != first.end(i)
                            || other.maxDelta(i) != first.maxDelta(i)) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    /**
     * The KV heads of each item of an unsplit batch's sequences ({@link HeadGrouping#choose}), or null for an item
     * per (sequence, KV head): only on a paged pool read whole pages at a time.
     */
    private int[] unsplitHeads(int workers) {
        if (!rows.pagesTile(DecodeScratch.PAGE_RUN, Integer.MAX_VALUE)) {
            return null;
        }
        long[] keys = new long[shape.batch()];
        for (int b = 0; b < keys.length; b++) {
            keys[b] = keyCounts[b * shape.kvHeads()];
        }
        return HeadGrouping.choose(keys, shape.kvHeads(), workers, rows.headMajorPages());
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }

    /** The work items as (unit, chunk) pairs, largest first (ties: unit, then chunk order). */
    List<long[]> items() {
        List<long[]> items = new ArrayList<>();
        for (int u = 0, step; u < chunks.length; u += step) {
            step = acrossHeads ? sequenceHeads[u / shape.kvHeads()] : 1;
            for (int c = 0; c < chunks[u]; c++) {
                long from = (long) c * chunkKeys;
                long size = Math.max(0, Math.min(keyCounts[u], from + chunkKeys) - from) * step;
                items.add(new long[] {u, c, size});
            }
        }
        items.sort((a, b) -> a[2] != b[2] ? Long.compare(b[2], a[2]) : a[0] != b[0] ? Long.compare(a[0], b[0])
                : Long.compare(a[1], b[1]));
        return items;
    }

    /**
     * Runs item (unit, chunk) on the calling thread: one KV head's chunk, or, across heads, the chunk of
     * the unit's sequence for {@link #sequenceHeads} KV heads from the unit's.
     */
    void run(int unit, int chunk) {
        if (!acrossHeads) {
            runUnit(unit, chunk);
            return;
        }
        int b = unit / shape.kvHeads();
        int g0 = unit % shape.kvHeads();
        if (wholePages) {
            runPages(b, chunk, g0, g0 + sequenceHeads[b]);
            return;
        }
        for (int g = g0; g < g0 + sequenceHeads[b]; g++) {
            runUnit(b * shape.kvHeads() + g, chunk);
        }
    }

    private void runUnit(int unit, int chunk) {
        DecodeScratch sc = SCRATCH.get();
        sc.ensure(nq, ldQ, ldO);
        int b = unit / shape.kvHeads();
        int g = unit % shape.kvHeads();
        loadQueries(b, g, sc.q);
        Arrays.fill(sc.m, 0, nq, Float.NEGATIVE_INFINITY);
        Arrays.fill(sc.l, 0, nq, 0f);
        Arrays.fill(sc.o, 0, nq * ldO, 0f);
        long from = (long) chunk * chunkKeys;
        long to = Math.min(keyCounts[unit], from + chunkKeys);
        if (from < to) {
            streamKeys(b, g, spans[unit], from, to, sc);
        }
        finishUnit(b, g, unit, chunk, sc, sc.m, sc.l, sc.o);
    }

    /** Writes the unit's rows (one chunk) or keeps them as the chunk's partial result. */
    private void finishUnit(int b, int g, int unit, int chunk, DecodeScratch sc, float[] m, float[] l, float[] o) {
        if (chunks[unit] == 1) {
            for (int x = 0; x < nq; x++) {
                float rowLse = finish(sc, m, l, o, x);
                write(b, g, x, sc.row, 0, rowLse);
            }
        } else {
            int slot = partialBase[unit] + chunk;
            for (int x = 0; x < nq; x++) {
                float rowLse = finish(sc, m, l, o, x);
                System.arraycopy(sc.row, 0, partialOut, (slot * nq + x) * dimV, dimV);
                partialLse[slot * nq + x] = rowLse;
            }
        }
    }

    /**
     * Chunk {@code chunk} of sequence {@code b}'s keys, every KV head (dense, or spans that every head
     * shares), on a paged cache whose pages hold every head's rows back to back: for each run of {@value
     * DecodeScratch#PAGE_RUN} keys, the pages that hold them are read whole (every head's key rows, then
     * every head's value rows, page after page: the pool in address order where the block table is;
     * scattered pages two at a time, {@link #readPages}), then each head computes its
     * blocks on cached lines. f16 and e4m3 rows are widened instead, page after page, every head's rows
     * of a page in turn ({@link #widenPages}; head by head from pages read whole where every head's widened
     * run would not fit {@link #WIDENED_PAGES_BYTES}). A head's blocks start where they would in {@link
     * #streamKeys} (at the chunk's start, every {@value DecodeScratch#BLOCK} keys), so the result has the bits
     * of a contiguous cache's.
     */
    private void runPages(int b, int chunk, int g0, int g1) {
        DecodeScratch sc = SCRATCH.get();
        int heads = shape.kvHeads();
        sc.ensure(nq, ldQ, ldO);
        // a run of PAGE_RUN keys lies on at most PAGE_RUN pages (one per key, where spans are short)
        sc.ensureHeads(heads, nq, ldQ, ldO, DecodeScratch.PAGE_RUN);
        if (staged) {
            sc.ensureWide(ldQ, ldO, widensPages ? heads * DecodeScratch.PAGE_RUN : DecodeScratch.RUN);
        }
        for (int g = g0; g < g1; g++) {
            loadQueries(b, g, sc.hq[g]);
            Arrays.fill(sc.hm[g], 0, nq, Float.NEGATIVE_INFINITY);
            Arrays.fill(sc.hl[g], 0, nq, 0f);
            Arrays.fill(sc.ho[g], 0, nq * ldO, 0f);
        }
        int unit0 = b * heads;
        KeySpans ks = spans[unit0];
        long from = (long) chunk * chunkKeys;
        long to = Math.min(keyCounts[unit0], from + chunkKeys);
        int length = lengths[b];
        long rowLo = (long) length - queryRows;
        SpanWalk walk = new SpanWalk(ks, from);
        for (long r = from; r < to; r += DecodeScratch.PAGE_RUN) {
            int count = (int) Math.min(DecodeScratch.PAGE_RUN, to - r);
            walk.next(count, sc.pos, sc.delta);
            rows.offsets(b, 0, sc.pos, count, sc.headK, sc.headV);
            if (widensPages) {
                widenPages(sc, count, g0, g1);
            } else {
                readPages(sc, rows.pages(b, sc.pos, count, sc.pageK, sc.pageV), g0, g1);
            }
            for (int g = g0; g < g1; g++) {
                if (!widensPages) {
                    headRows(sc, g, 0, count);
                    if (staged) {
                        // f16 and e4m3 rows widened from the pages just read, head by head
                        widenRows(sc, g, 0, count, 0);
                    }
                }
                blocks(sc, g, count, sc.hq[g], sc.hm[g], sc.hl[g], sc.ho[g], rowLo,
                        widensPages ? g * DecodeScratch.PAGE_RUN : 0);
            }
        }
        for (int g = g0; g < g1; g++) {
            finishUnit(b, g, unit0 + g, chunk, sc, sc.hm[g], sc.hl[g], sc.ho[g]);
        }
    }

    /** Head {@code g}'s K and V row offsets of the run's keys {@code from .. to − 1}, from head 0's. */
    private void headRows(DecodeScratch sc, int g, int from, int to) {
        long dk = rows.keyHeadShift(g);
        long dv = rows.valueHeadShift(g);
        for (int j = from; j < to; j++) {
            sc.runK[j] = sc.headK[j] + dk;
            sc.runV[j] = sc.headV[j] + dv;
        }
    }

    /**
     * Widens the run's {@code count} keys of every head, page after page and, within a page, head after
     * head, head {@code g}'s rows into widened rows {@code g · PAGE_RUN ..} (the row offsets of head 0 in
     * {@code sc.headK}, {@code sc.headV}).
     */
    private void widenPages(DecodeScratch sc, int count, int g0, int g1) {
        int pageSize = rows.pageSize();
        for (int j = 0; j < count; ) {
            int page = sc.pos[j] / pageSize;
            int e = j + 1;
            while (e < count && sc.pos[e] / pageSize == page) {
                e++;
            }
            for (int g = g0; g < g1; g++) {
                headRows(sc, g, j, e);
                widenRows(sc, g, j, e, g * DecodeScratch.PAGE_RUN);
            }
            j = e;
        }
    }

    /**
     * Reads the rows of KV heads {@code g0 .. g1 − 1} of the run's {@code pages} pages ({@code sc.pageK},
     * {@code sc.pageV}) once: whole pages for every head, else each page's slice of those heads (a pool whose
     * pages hold their heads' rows head after head, {@link CacheRows#headMajorPages}), else each token's rows
     * of those heads, which lie side by side (a token-major pool, NHD), page after page. Whole pages or slices
     * that do not follow one another in the pool are read {@value ReadOrder#PAGE_WAYS} at a time, row by row
     * ({@link ReadOrder#ranges}); otherwise one after another.
     */
    private void readPages(DecodeScratch sc, int pages, int g0, int g1) {
        long e = rows.dtype.byteSize();
        int heads = g1 - g0;
        int kPage = rows.keyPageElements() / shape.kvHeads() * heads;
        int vPage = rows.valuePageElements() / shape.kvHeads() * heads;
        if (g0 > 0) {
            long dk = rows.keyHeadShift(g0);
            long dv = rows.valueHeadShift(g0);
            for (int i = 0; i < pages; i++) {
                sc.pageK[i] += dk;
                sc.pageV[i] += dv;
            }
        }
        // the read pass only brings lines in: f16 and e4m3 rows are read as rows of 2-byte elements
        DType as = e == 4 ? DType.F32 : DType.BF16;
        long per = as.byteSize();
        if (heads < shape.kvHeads() && !rows.headMajorPages()) {
            // on a token-major pool (NHD), a token's rows of the group's heads side by side, token after token
            sc.ensurePageRows(pages, kPage / dim);
            int n = rows.tokenRows(sc.pageK, sc.pageV, pages, sc.pageRowsK, sc.pageRowsV);
            math.readRows(rows.keys, sc.pageRowsK, (int) (heads * dim * e / per), rows.values, sc.pageRowsV,
                    (int) (heads * dimV * e / per), as, n);
            return;
        }
        int read = -1;
        if (pages > 1) {
            sc.ensurePageRows(pages, kPage / dim);
            // a group's slices one after another (each a stretch of its page); scattered whole pages two at a time
            int w = heads < shape.kvHeads() ? 1 : ReadOrder.PAGE_WAYS;
            read = ReadOrder.ranges(sc.pageK, pages, kPage * e, (int) (dim * e), w, sc.pageRowsK, sc.pageStarts);
            if (read > 0 && ReadOrder.ranges(sc.pageV, pages, vPage * e, (int) (dimV * e), w, sc.pageRowsV,
                    sc.pageStarts) != read) {
                read = -1;
            }
        }
        if (read < 0) {
            math.readRows(rows.keys, sc.pageK, (int) (kPage * e / per), rows.values, sc.pageV, (int) (vPage * e / per),
                    as, pages);
        } else {
            math.readRows(rows.keys, sc.pageRowsK, (int) (dim * e / per), rows.values, sc.pageRowsV,
                    (int) (dimV * e / per), as, read);
        }
    }

    /** Merges the chunks of every split unit through their LSEs, in chunk order, and writes the rows. */
    void mergeSplitUnits() {
        float[] acc = new float[dimV];
        for (int u = 0; u < chunks.length; u++) {
            if (chunks[u] < 2) {
                continue;
            }
            int b = u / shape.kvHeads();
            int g = u % shape.kvHeads();
            int base = partialBase[u];
            for (int x = 0; x < nq; x++) {
                System.arraycopy(partialOut, (base * nq + x) * dimV, acc, 0, dimV);
                float accLse = partialLse[base * nq + x];
                for (int c = 1; c < chunks[u]; c++) {
                    int slot = base + c;
                    accLse = LseMerge.mergeRow(acc, 0, accLse, partialOut, (slot * nq + x) * dimV,
                            partialLse[slot * nq + x], dimV);
                }
                if (accLse == Float.NEGATIVE_INFINITY) {
                    Arrays.fill(acc, 0f);
                }
                write(b, g, x, acc, 0, accLse);
            }
        }
    }

    /** Query vector x = (head in group) · rows + row, scaled, zero past the head dim. */
    private void loadQueries(int b, int g, float[] dst) {
        Arrays.fill(dst, 0, roundUp(nq, 4) * ldQ, 0f);
        for (int hh = 0; hh < group; hh++) {
            int h = g * group + hh;
            for (int r = 0; r < queryRows; r++) {
                int at = (hh * queryRows + r) * ldQ;
                q.readRow(b, h, r, dst, at);
                for (int d = 0; d < dim; d++) {
                    dst[at + d] *= scale;
                }
            }
        }
    }

    private void streamKeys(int b, int g, KeySpans ks, long from, long to, DecodeScratch sc) {
        int length = lengths[b];
        long rowLo = (long) length - queryRows;
        SpanWalk walk = new SpanWalk(ks, from);
        long left = to - from;
        if (staged) {
            sc.ensureWide(ldQ, ldO);
        }
        // runs of DecodeScratch.RUN keys: their key and value rows are read once, key row and value row
        // in turn, before the arithmetic of their blocks (two long sequential streams that the hardware
        // prefetcher follows; a run of f32 rows, 256 KiB at head dim 128, stays in L2); a run of short
        // pieces (Quest's pages, head by head) is read a few pieces at a time (CacheRows.readOrder). f16
        // rows are widened instead, which reads them (see staged); e4m3 rows a block at a time: their
        // widening is more arithmetic than reads, and 64 keys' f32 rows (64 KiB at head dim 128) stay nearer
        // than 256 keys' (measured: docs/PERFORMANCE.md, "f16 rows widened a run at a time")
        int run = rows.dtype == DType.E4M3 ? DecodeScratch.BLOCK : DecodeScratch.RUN;
        while (left > 0) {
            int count = (int) Math.min(run, left);
            walk.next(count, sc.pos, sc.delta);
            left -= count;
            rows.offsets(b, g, sc.pos, count, sc.runK, sc.runV);
            if (staged) {
                widenRows(sc, g, 0, count, 0);
            } else {
                boolean reordered = rows.readOrder(sc.runK, sc.runV, count, sc.readK, sc.readV, sc.pieceStarts);
                math.readRows(rows.keys, reordered ? sc.readK : sc.runK, dim, rows.values,
                        reordered ? sc.readV : sc.runV, dimV, rows.dtype, count);
            }
            blocks(sc, g, count, sc.q, sc.m, sc.l, sc.o, rowLo, 0);
        }
    }

    /**
     * The arithmetic of a run's {@code count} keys ({@code sc.pos}, {@code sc.delta}; rows at {@code
     * sc.runK}, {@code sc.runV}) in blocks of {@value DecodeScratch#BLOCK}, for KV head {@code g}'s query
     * vectors {@code qv} and running state {@code m}, {@code l}, {@code o}. The run's rows were read
     * just before (a read pass, or their widening), so the kernels do not read them ahead again.
     */
    private void blocks(DecodeScratch sc, int g, int count, float[] qv, float[] m, float[] l, float[] o, long rowLo,
                        int wideRow0) {
        long rowHi = rowLo + queryRows - 1;
        for (int s0 = 0; s0 < count; s0 += DecodeScratch.BLOCK) {
            int n = Math.min(DecodeScratch.BLOCK, count - s0);
            boolean mask = false;
            for (int j = s0; j < s0 + n; j++) {
                int delta = sc.delta[j];
                mask |= sc.pos[j] > rowLo || (delta != KeySpans.UNBANDED && rowHi - sc.pos[j] > delta);
            }
            MemorySegment kSeg = rows.keys;
            MemorySegment vSeg = rows.values;
            DType type = rows.dtype;
            if (staged) {
                for (int j = 0; j < n; j++) {
                    sc.kOff[j] = 4L * (wideRow0 + s0 + j) * ldQ;
                    sc.vOff[j] = 4L * (wideRow0 + s0 + j) * ldO;
                }
                kSeg = sc.wideKSeg;
                vSeg = sc.wideVSeg;
                type = DType.F32;
            } else {
                System.arraycopy(sc.runK, s0, sc.kOff, 0, n);
                System.arraycopy(sc.runV, s0, sc.vOff, 0, n);
            }
            int ldS = DecodeScratch.BLOCK;
            math.scores(qv, ldQ, nq, dim, kSeg, sc.kOff, vSeg, sc.vOff, dimV, type, n, sc.s, ldS, true);
            if (softCap > 0f) {
                for (int x = 0; x < nq; x++) {
                    for (int j = 0, i = x * ldS; j < n; j++, i++) {
                        sc.s[i] = (float) (softCap * Math.tanh(sc.s[i] / softCap));
                    }
                }
            }
            if (mask) {
                applyMask(sc, s0, n, rowLo);
            }
            math.softmax(sc.s, ldS, nq, n, m, l, sc.alpha);
            math.accumulate(sc.s, ldS, nq, n, vSeg, sc.vOff, type, dimV, o, ldO, sc.alpha, true);
        }
    }

    /** Sets to −∞ the scores of keys a row does not admit (after its position, or outside its band). */
    private void applyMask(DecodeScratch sc, int s0, int n, long rowLo) {
        for (int x = 0; x < nq; x++) {
            long p = rowLo + x % queryRows;
            int base = x * DecodeScratch.BLOCK;
            for (int j = 0; j < n; j++) {
                long delta = p - sc.pos[s0 + j];
                if (delta < 0 || delta > sc.delta[s0 + j]) {
                    sc.s[base + j] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    /**
     * Widens keys {@code from .. to − 1} of the run ({@code sc.runK}, {@code sc.runV}: KV head {@code g}'s
     * rows) into widened rows {@code wideRow0 + from ..} of {@code sc.wideK} and {@code sc.wideV}, rows that
     * follow one another in the cache (a contiguous cache's run, a page's rows) at once, keys then values;
     * the run's f32 rows then stay in L2.
     */
    private void widenRows(DecodeScratch sc, int g, int from, int to, int wideRow0) {
        DType type = rows.dtype;
        float ks = rows.keyScale(g);
        float vs = rows.valueScale(g);
        long kRow = (long) dim * type.byteSize();
        long vRow = (long) dimV * type.byteSize();
        // rows that follow one another in the cache, and so in the scratch, are widened by one call: a
        // widening loop over one row of 128 values spends about as long again outside its vector body
        boolean join = ldQ == dim && ldO == dimV;
        for (int j = from; j < to; ) {
            int e = !join ? j + 1 : Math.min(WidenedRows.following(sc.runK, j, to, kRow),
                    WidenedRows.following(sc.runV, j, to, vRow));
            int at = wideRow0 + j;
            WidenedRows.widen(tiles, rows.keys, type, sc.runK[j], ks, sc.wideK, at * ldQ, (e - j) * dim);
            WidenedRows.widen(tiles, rows.values, type, sc.runV[j], vs, sc.wideV, at * ldO, (e - j) * dimV);
            j = e;
        }
    }

    /**
     * Normalises query vector x into {@code sc.row} and returns its LSE: 0 and −∞ when it admitted
     * nothing (or only −∞ scores); NaN everywhere when a score was NaN or +∞ (the running sum turns NaN
     * then, and stays NaN), so that such a row is never taken for an empty one, here or in the merge.
     */
    private float finish(DecodeScratch sc, float[] ms, float[] ls, float[] o, int x) {
        float l = ls[x];
        float m = ms[x];
        if (Float.isNaN(l) || Float.isNaN(m)) {
            Arrays.fill(sc.row, 0, dimV, Float.NaN);
            return Float.NaN;
        }
        if (!(l > 0f) || m == Float.NEGATIVE_INFINITY) {
            Arrays.fill(sc.row, 0, dimV, 0f);
            return Float.NEGATIVE_INFINITY;
        }
        int base = x * ldO;
        for (int c = 0; c < dimV; c++) {
            sc.row[c] = o[base + c] / l;
        }
        return (float) (m + Math.log(l));
    }

    private void write(int b, int g, int x, float[] row, int off, float rowLse) {
        int h = g * group + x / queryRows;
        int r = x % queryRows;
        out.writeRow(b, h, r, row, off);
        if (lse != null) {
            lse.set(b, h, r, 0, rowLse);
        }
    }

    /**
     * Runs every item on {@code workers} (the calling thread among them), then merges split units.
     *
     * @throws java.util.concurrent.CancellationException if a worker was interrupted before the items
     *     were done (the output and LSE are then incomplete; no merge runs)
     */
    void execute(Workers workers) {
        List<long[]> items = items();
        workers.forEach(items.size(), i -> run((int) items.get(i)[0], (int) items.get(i)[1]));
        mergeSplitUnits();
    }

    /** The keys of a span list in visiting order, from a given index on: positions and their bands. */
    private static final class SpanWalk {
        private final KeySpans spans;
        private int span;
        private int key;

        /** Starts at the {@code from}-th key ({@code from} below the list's key count, or no key is taken). */
        SpanWalk(KeySpans spans, long from) {
            this.spans = spans;
            long before = 0;
            while (span < spans.size() && before + (spans.end(span) - spans.start(span)) <= from) {
                before += spans.end(span) - spans.start(span);
                span++;
            }
            key = span < spans.size() ? (int) (spans.start(span) + (from - before)) : 0;
        }

        /** The next {@code n} keys' positions into {@code pos[0 .. n)} and their spans' bands into {@code delta}. */
        void next(int n, int[] pos, int[] delta) {
            for (int j = 0; j < n; j++) {
                if (key >= spans.end(span)) {
                    span++;
                    key = spans.start(span);
                }
                pos[j] = key++;
                delta[j] = spans.maxDelta(span);
            }
        }
    }
}
