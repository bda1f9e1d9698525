package dev.sparsa.cpu;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Where the rows of a host KV cache are, in bytes of its K and V segments, for one call: a
 * contiguous cache's rows by stride, a paged cache's through the block table (copied once per call).
 * The only difference between the two layouts that a kernel sees.
 */
final class CacheRows {
    final MemorySegment keys;
    final MemorySegment values;
    final DType dtype;
    private final Tensor k;
    private final Tensor v;
    private final long kSeq;
    private final long vSeq;
    private final boolean paged;
    private final int shift;
    private final int slotMask;
    private final long kPage;
    private final long vPage;
    private final int[][] tables;
    /** A paged pool whose pages hold every head's rows back to back (no padding): one page is one range. */
    private final boolean densePages;
    private final int pageSize;
    private final int kvHeads;
    private final int dim;
    private final int dimV;
    private final long kPool;
    private final long vPool;

    /** The scale of KV head {@code g}'s keys in an e4m3 cache (1 for the other types). */
    float keyScale(int g) {
        return dtype.isScaled() ? k.scale(g) : 1f;
    }

    /** The scale of KV head {@code g}'s values in an e4m3 cache (1 for the other types). */
    float valueScale(int g) {
        return dtype.isScaled() ? v.scale(g) : 1f;
    }

    CacheRows(KvCache cache) {
        this.dtype = cache.dtype();
        long e = dtype.byteSize();
        if (cache instanceof PagedKvCache p) {
            k = p.keyPages();
            v = p.valuePages();
            paged = true;
            shift = Integer.numberOfTrailingZeros(p.pageSize());
            slotMask = p.pageSize() - 1;
            kPage = k.stride(0) * e;
            vPage = v.stride(0) * e;
            tables = new int[p.batch()][];
            for (int b = 0; b < tables.length; b++) {
                tables[b] = p.blockTable(b);
            }
            pageSize = p.pageSize();
            kvHeads = p.kvHeads();
            dim = p.headDim();
            dimV = p.valueDim();
            kPool = k.index(0, 0, 0, 0) * e;
            vPool = v.index(0, 0, 0, 0) * e;
            long pages = k.shape()[0];
            densePages = kPage == (long) kvHeads * pageSize * dim * e && vPage == (long) kvHeads * pageSize * dimV * e
                    && v.shape()[0] == pages && kPool + pages * kPage <= k.segment().byteSize()
                    && vPool + pages * vPage <= v.segment().byteSize();
        } else {
            ContiguousKvCache c = (ContiguousKvCache) cache;
            k = c.keyStorage();
            v = c.valueStorage();
            paged = false;
            shift = 0;
            slotMask = 0;
            kPage = 0;
            vPage = 0;
            tables = null;
            densePages = false;
            pageSize = 0;
            kvHeads = 0;
            dim = 0;
            dimV = 0;
            kPool = 0;
            vPool = 0;
        }
        keys = k.segment();
        values = v.segment();
        kSeq = k.stride(2) * e;
        vSeq = v.stride(2) * e;
    }

    /**
     * The run's rows {@code kOff[0 .. n)}, {@code vOff[0 .. n)} in the order of a read pass ({@link
     * ReadOrder#rows}): true with the order in {@code outK}, {@code outV}, or false to read them as they are.
     */
    boolean readOrder(long[] kOff, long[] vOff, int n, long[] outK, long[] outV, int[] starts) {
        return ReadOrder.rows(kOff, vOff, n, kSeq, vSeq, outK, outV, starts);
    }

    /** Byte offsets of the K and V rows of keys {@code pos[0 .. n)} of (sequence, head). */
    void offsets(int b, int g, int[] pos, int n, long[] kOff, long[] vOff) {
        long e = dtype.byteSize();
        if (!paged) {
            long kb = k.index(b, g, 0, 0) * e;
            long vb = v.index(b, g, 0, 0) * e;
            for (int j = 0; j < n; j++) {
                kOff[j] = kb + pos[j] * kSeq;
                vOff[j] = vb + pos[j] * vSeq;
            }
            return;
        }
        int[] table = tables[b];
        long kb = k.index(0, g, 0, 0) * e;
        long vb = v.index(0, g, 0, 0) * e;
        for (int j = 0; j < n; j++) {
            int t = pos[j];
            long page = table[t >>> shift];
            long slot = t & slotMask;
            kOff[j] = kb + page * kPage + slot * kSeq;
            vOff[j] = vb + page * vPage + slot * vSeq;
        }
    }

    /**
     * Whether runs of {@code run} keys starting at multiples of {@code chunkKeys} cover whole pages of
     * a pool that {@link #pages} can read: a paged cache without padding between its pages' rows,
     * whose page size divides {@code run} and {@code chunkKeys} ({@link Integer#MAX_VALUE}: one chunk from
     * key 0).
     */
    boolean pagesTile(int run, int chunkKeys) {
        return densePages && run % pageSize == 0 && (chunkKeys == Integer.MAX_VALUE || chunkKeys % pageSize == 0);
    }

    /**
     * Whether a page's rows lie head after head (an HND pool whose pages {@link #pages} can read), so that
     * the rows of consecutive KV heads of a page are one contiguous slice of it.
     */
    boolean headMajorPages() {
        return densePages && (kvHeads == 1
                || keyHeadShift(1) == pageSize * kSeq && valueHeadShift(1) == pageSize * vSeq);
    }

    /** Whether {@link #pages} can read this cache: a paged pool without padding between its pages' rows. */
    boolean readsWholePages() {
        return densePages;
    }

    /** Tokens per page of a paged cache (0 for a contiguous one). */
    int pageSize() {
        return pageSize;
    }

    /** Elements of a whole page of K (every head's rows), as {@link #pages} counts them. */
    int keyPageElements() {
        return kvHeads * pageSize * dim;
    }

    /** Elements of a whole page of V. */
    int valuePageElements() {
        return kvHeads * pageSize * dimV;
    }

    /**
     * The byte offsets of the pages that hold keys {@code from .. from + n − 1} of sequence {@code b}
     * ({@code from} a multiple of the page size), in block-table order; returns their number. A page
     * is {@link #keyPageElements} (K) and {@link #valuePageElements} (V) elements from there: every KV
     * head's rows of its keys, back to back.
     */
    int pages(int b, int from, int n, long[] kOff, long[] vOff) {
        int[] table = tables[b];
        int count = 0;
        for (int t = from; t < from + n; t += pageSize, count++) {
            long page = table[t >>> shift];
            kOff[count] = kPool + page * kPage;
            vOff[count] = vPool + page * vPage;
        }
        return count;
    }

    /**
     * The byte offsets of the pages that hold keys {@code pos[0 .. n)} of sequence {@code b} (ascending
     * positions), each page once, in the keys' order; returns their number (at most {@code n}). A page is
     * as in {@link #pages(int, int, int, long[], long[])}.
     */
    int pages(int b, int[] pos, int n, long[] kOff, long[] vOff) {
        int[] table = tables[b];
        int count = 0;
        int last = -1;
        for (int j = 0; j < n; j++) {
            int p = pos[j] >>> shift;
            if (p != last) {
                long page = table[p];
                kOff[count] = kPool + page * kPage;
                vOff[count++] = vPool + page * vPage;
                last = p;
            }
        }
        return count;
    }

    /**
     * The offsets of the token rows of {@code pages} pages of a token-major pool (NHD: a token's rows of
     * every head side by side) from the pages' offsets {@code pageK}, {@code pageV} (shifted to a head's
     * rows), page after page and token after token, into {@code outK}, {@code outV}; returns how many
     * ({@code pages · pageSize}). Each is where that token's rows of the head and the heads after it start.
     */
    int tokenRows(long[] pageK, long[] pageV, int pages, long[] outK, long[] outV) {
        int at = 0;
        for (int i = 0; i < pages; i++) {
            for (int s = 0; s < pageSize; s++, at++) {
                outK[at] = pageK[i] + s * kSeq;
                outV[at] = pageV[i] + s * vSeq;
            }
        }
        return at;
    }

    /** How far head {@code g}'s K rows lie from head 0's of the same key, in bytes (the same for every key). */
    long keyHeadShift(int g) {
        return (k.index(0, g, 0, 0) - k.index(0, 0, 0, 0)) * dtype.byteSize();
    }

    /** How far head {@code g}'s V rows lie from head 0's of the same key, in bytes. */
    long valueHeadShift(int g) {
        return (v.index(0, g, 0, 0) - v.index(0, 0, 0, 0)) * dtype.byteSize();
    }

    /** Byte offset of the K row of key {@code t} of (sequence, head). */
    long keyOffset(int b, int g, int t) {
        long e = dtype.byteSize();
        if (!paged) {
            return k.index(b, g, 0, 0) * e + t * kSeq;
        }
        return k.index(0, g, 0, 0) * e + tables[b][t >>> shift] * kPage + (t & slotMask) * kSeq;
    }
}
