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
    /** The most floats of scores a span holds ({@link #spanKeys}): 64 KiB. */
    static final int SPAN_FLOATS = 16384;

    /** The most keys per span. */
    static final int MAX_SPAN = 4096;

    /**
     * Keys per two-pass span for {@code nq} query vectors of each of {@code heads} KV heads computed
     * together (a work item across heads keeps every head's scores of a span): as many as fit {@value
     * #SPAN_FLOATS} scores in all (the query vectors rounded up to 4), at most {@value #MAX_SPAN}, a
     * multiple of {@value #BLOCK}. Depends on the shape only, so every cache layout and thread count cuts
     * alike.
     */
    static int spanKeys(int nq, int heads) {
        int n4 = (nq + 3) / 4 * 4;
        return Math.max(BLOCK, Math.min(MAX_SPAN, SPAN_FLOATS / (n4 * heads) / BLOCK * BLOCK));
    }

    /** Positions, band limits and row offsets of a span (or an f16 run) of keys. */
    int[] pos = new int[BLOCK];
    int[] delta = new int[BLOCK];
    long[] runK = new long[BLOCK];
    long[] runV = new long[BLOCK];
    /** A span's scores, then probabilities ({@code x·span + j}). */
    float[] sp = new float[0];
    /** Row offsets of the block being computed. */
    final long[] kOff = new long[BLOCK];
    final long[] vOff = new long[BLOCK];
    /** f16 rows widened to f32, and the segments over them. */
    float[] wideK = new float[0];
    float[] wideV = new float[0];
    MemorySegment wideKSeg = MemorySegment.ofArray(wideK);
    MemorySegment wideVSeg = MemorySegment.ofArray(wideV);

    /**
     * Per KV head (items across heads): query vectors, running max, sum, outputs, a span's scores and
     * the rescaling of the outputs; how far each head's K and V rows lie from head 0's.
     */
    float[][] hq = new float[0][];
    float[][] hm = new float[0][];
    float[][] hl = new float[0][];
    float[][] ho = new float[0][];
    float[][] hs = new float[0][];
    float[][] halpha = new float[0][];
    long[] shiftK = new long[0];
    long[] shiftV = new long[0];

    /**
     * Room for {@code heads} KV heads' state and spans of {@code span} keys (a page's scores may run
     * {@value #BLOCK} lanes past a span: see {@link DecodeMath#scoresAcrossHeads}).
     */
    void ensureHeads(int heads, int nq, int ldQ, int ldO, int span) {
        int n4 = (nq + 3) / 4 * 4;
        if (hq.length < heads || hq[0].length < n4 * ldQ || ho[0].length < n4 * ldO || hm[0].length < n4
                || hs[0].length < n4 * span + BLOCK) {
            hq = new float[heads][n4 * ldQ];
            hm = new float[heads][n4];
            hl = new float[heads][n4];
            ho = new float[heads][n4 * ldO];
            hs = new float[heads][n4 * span + BLOCK];
            halpha = new float[heads][n4];
            shiftK = new long[heads];
            shiftV = new long[heads];
        }
    }

    /** Room for spans of {@code span} keys of {@code nq} query vectors. */
    void ensureSpan(int span, int nq) {
        int n4 = (nq + 3) / 4 * 4;
        if (pos.length < span) {
            pos = new int[span];
            delta = new int[span];
            runK = new long[span];
            runV = new long[span];
        }
        if (sp.length < n4 * span) {
            sp = new float[n4 * span];
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

    /** Room for a block of f16 rows widened to f32. */
    void ensureWide(int ldQ, int ldO) {
        if (wideK.length < BLOCK * ldQ) {
            wideK = new float[BLOCK * ldQ];
            wideKSeg = MemorySegment.ofArray(wideK);
        }
        if (wideV.length < BLOCK * ldO) {
            wideV = new float[BLOCK * ldO];
            wideVSeg = MemorySegment.ofArray(wideV);
        }
    }
}
