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
        }
        keys = k.segment();
        values = v.segment();
        kSeq = k.stride(2) * e;
        vSeq = v.stride(2) * e;
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

    /** Byte offset of the K row of key {@code t} of (sequence, head). */
    long keyOffset(int b, int g, int t) {
        long e = dtype.byteSize();
        if (!paged) {
            return k.index(b, g, 0, 0) * e + t * kSeq;
        }
        return k.index(0, g, 0, 0) * e + tables[b][t >>> shift] * kPage + (t & slotMask) * kSeq;
    }
}
