package dev.sparsa.cpu;

import java.lang.foreign.MemorySegment;

/**
 * One worker thread's working memory for decode work items, grown on demand and reused, so the key
 * loop never allocates. Never shared between threads.
 */
final class DecodeScratch {
    /** Keys per block: a multiple of every lane count. */
    static final int BLOCK = 64;

    float[] q = new float[0];
    float[] s = new float[0];
    float[] o = new float[0];
    float[] m = new float[0];
    float[] l = new float[0];
    float[] alpha = new float[0];
    float[] row = new float[0];
    /** Keys read ahead at once: {@code RUN / BLOCK} blocks, key and value rows in turn. */
    static final int RUN = 4 * BLOCK;

    /** Keys per run when whole pages are read across KV heads (at most {@link #RUN}). */
    static final int PAGE_RUN = 64;

    /** Positions, band limits and row offsets of a run of keys. */
    final int[] pos = new int[RUN];
    final int[] delta = new int[RUN];
    final long[] runK = new long[RUN];
    final long[] runV = new long[RUN];
    /** Head 0's row offsets of a run across heads (another head's lie a fixed distance away). */
    final long[] headK = new long[RUN];
    final long[] headV = new long[RUN];
    /** A run's row offsets in the order of its read pass, and where its pieces start. */
    final long[] readK = new long[RUN];
    final long[] readV = new long[RUN];
    final int[] pieceStarts = new int[RUN + 1];
    /** Row offsets of the block being computed. */
    final long[] kOff = new long[BLOCK];
    final long[] vOff = new long[BLOCK];
    /** A run of f16 or e4m3 rows widened to f32, and the segments over them. */
    float[] wideK = new float[0];
    float[] wideV = new float[0];
    MemorySegment wideKSeg = MemorySegment.ofArray(wideK);
    MemorySegment wideVSeg = MemorySegment.ofArray(wideV);
    private boolean wideUnalignable;

    /** Per KV head: query vectors, running max, sum and outputs (items across heads). */
    float[][] hq = new float[0][];
    float[][] hm = new float[0][];
    float[][] hl = new float[0][];
    float[][] ho = new float[0][];
    /** Offsets of whole pages (every head's rows), read ahead of a run across heads. */
    long[] pageK = new long[0];
    long[] pageV = new long[0];

    /** Whole pages cut into rows in read order ({@link ReadOrder#ranges}): K, V, and the pieces' starts. */
    long[] pageRowsK = new long[0];
    long[] pageRowsV = new long[0];
    int[] pageStarts = new int[0];

    /** Room for {@code pages} whole pages of {@code rowsPerPage} rows in read order. */
    void ensurePageRows(int pages, int rowsPerPage) {
        if (pageRowsK.length < pages * rowsPerPage) {
            pageRowsK = new long[pages * rowsPerPage];
            pageRowsV = new long[pages * rowsPerPage];
        }
        if (pageStarts.length < pages + 1) {
            pageStarts = new int[pages + 1];
        }
    }

    /** Room for {@code heads} KV heads' state and the offsets of {@code pages} whole pages. */
    void ensureHeads(int heads, int nq, int ldQ, int ldO, int pages) {
        int n4 = (nq + 3) / 4 * 4;
        if (hq.length < heads || hq[0].length < n4 * ldQ || ho[0].length < n4 * ldO || hm[0].length < n4) {
            hq = new float[heads][n4 * ldQ];
            hm = new float[heads][n4];
            hl = new float[heads][n4];
            ho = new float[heads][n4 * ldO];
        }
        if (pageK.length < pages) {
            pageK = new long[pages];
            pageV = new long[pages];
        }
    }

    /** Room for {@code nq} query vectors (rounded up to 4) of {@code ldQ}, outputs of {@code ldO}. */
    void ensure(int nq, int ldQ, int ldO) {
        int n4 = (nq + 3) / 4 * 4;
        if (q.length < n4 * ldQ) {
            q = new float[n4 * ldQ];
        }
        if (s.length < n4 * BLOCK) {
            s = new float[n4 * BLOCK];
        }
        if (o.length < n4 * ldO) {
            o = new float[n4 * ldO];
        }
        if (m.length < n4) {
            m = new float[n4];
            l = new float[n4];
            alpha = new float[n4];
        }
        if (row.length < ldO) {
            row = new float[ldO];
        }
    }

    /**
     * Room for a run of f16 or e4m3 rows widened to f32, on 64-byte boundaries where {@link AlignedArrays}
     * can place them (allocated again when the garbage collector moved them off; never again once an
     * allocation could not be placed).
     */
    void ensureWide(int ldQ, int ldO) {
        ensureWide(ldQ, ldO, RUN);
    }

    /** As {@link #ensureWide(int, int)}, with room for {@code rows} rows (at least {@link #RUN}). */
    void ensureWide(int ldQ, int ldO, int rows) {
        rows = Math.max(rows, RUN);
        boolean recheck = !wideUnalignable;
        if (wideK.length < rows * ldQ || recheck && !AlignedArrays.aligned(wideK)) {
            wideK = AlignedArrays.allocate(rows * ldQ);
            wideKSeg = MemorySegment.ofArray(wideK);
            wideUnalignable |= !AlignedArrays.aligned(wideK);
        }
        if (wideV.length < rows * ldO || recheck && !AlignedArrays.aligned(wideV)) {
            wideV = AlignedArrays.allocate(rows * ldO);
            wideVSeg = MemorySegment.ofArray(wideV);
            wideUnalignable |= !AlignedArrays.aligned(wideV);
        }
    }
}
