package dev.sparsa.cpu;

import java.util.Arrays;

/**
 * One worker thread's working memory: grown when a larger tile arrives, then reused for every tile
 * and head, so the tile loops never allocate. Never shared between threads.
 */
final class Scratch {
    /** How many {@link #ensure} calls pass between checks that the GC left the vector-loaded arrays aligned. */
    static final int REALIGN_EVERY = 64;
    private static final float[] EMPTY = new float[0];
    private int ensures;
    /** An array could not be placed on the boundary (a G1 humongous array starts 16 bytes past it): stop trying. */
    private boolean unalignable;

    float[] qT = new float[0];
    /** The tile's queries row-major (scaled), for the narrow form. */
    float[] qR = new float[0];
    /** Row-major scores of the narrow form, {@code rows × ldR}. */
    float[] sR = new float[0];
    float[] o = new float[0];
    /** True until the current tile's first chunk has written {@link #o} (before that, o holds no data). */
    boolean fresh;
    /**
     * The f32 output array that the tile's last chunk writes its normalised rows into (row {@code r} at
     * {@link #outAt}{@code [r]}), or null when the rows are normalised from {@link #o} afterwards.
     */
    float[] direct;
    /** The sum of the words {@code TileRunner.touchAhead} read; only written, so that the reads stay. */
    float touched;
    /** The key/value head the current tile reads. */
    int kvHead;
    /** Chunks of the current tile still to run. */
    int chunksLeft;
    /** Where stacked row {@code r}'s output row starts in {@link #direct}. */
    int[] outAt = new int[0];
    float[] m = new float[0];
    float[] l = new float[0];
    float[] alpha = new float[0];
    float[] s = new float[0];
    float[] k = new float[0];
    float[] v = new float[0];
    short[] raw = new short[0];
    float[] row = new float[0];
    float[] bias = new float[0];
    int[] keys = new int[0];
    /** Where key / value row {@code j} of the current chunk starts in {@link #kRows} / {@link #vRows}. */
    int[] kOff = new int[0];
    int[] vOff = new int[0];
    /** The arrays holding the current chunk's rows: the scratch copies, or the caller's f32 arrays. */
    float[] kRows;
    float[] vRows;
    long[] qPos = new long[0];
    /** Where stacked query row {@code r} starts in the array its tile is gathered from. */
    int[] rowAt = new int[0];

    /** The sorted union of a group's key lists ({@link #unionSize} keys). */
    int[] union = new int[0];
    int unionSize;
    /** The key range {@link #gatheredBy} / {@link #heldBy} may hold marks in (empty when hi < lo). */
    int unionLo;
    int unionHi = -1;
    /** Per key position: bit i set when tile i of the group gathers it / holds it unconditionally; zero between groups. */
    int[] gatheredBy = new int[0];
    int[] heldBy = new int[0];

    /** Per tile of a shared run (TileRunner.computeShared): its next block chunk, its blocks, full blocks and chunks. */
    final int[] sharePos = new int[TileRunner.GROUP_TILES];
    final int[] shareBlocks = new int[TileRunner.GROUP_TILES];
    final int[] shareFull = new int[TileRunner.GROUP_TILES];
    final int[] shareChunks = new int[TileRunner.GROUP_TILES];
    /** A shared run's block loads: load {@code i} converts block {@code shareBlock[i]} for the tiles of bit mask {@code shareTiles[i]}. */
    int[] shareBlock = new int[0];
    int[] shareTiles = new int[0];
    int shareSteps;

    /** Makes room for a shared run's schedule of up to {@code steps} block loads. */
    void ensureShare(int steps) {
        if (shareBlock.length < steps) {
            shareBlock = new int[steps];
            shareTiles = new int[steps];
        }
    }

    /** Makes room for marks over {@code keys} key positions and a union of up to {@code size} keys. */
    void ensureKeys(int keys, int size) {
        if (gatheredBy.length < keys) {
            gatheredBy = new int[keys];
            heldBy = new int[keys];
        }
        if (union.length < size) {
            union = new int[size];
        }
    }

    /**
     * Makes room for a tile of {@code rowsPad} (stacked) rows against chunks of {@code chunk} keys
     * ({@code ldR}: the narrow form's row stride).
     */
    void ensure(int rowsPad, int chunk, int dim, int cols, int ldR) {
        if (AlignedArrays.enabled() && !unalignable && (++ensures & (REALIGN_EVERY - 1)) == 0) {
            realign();
        }
        qT = grow(qT, (long) dim * rowsPad);
        qR = grow(qR, (long) dim * rowsPad);
        sR = grow(sR, (long) rowsPad * ldR);
        o = grow(o, (long) rowsPad * cols);
        m = grow(m, rowsPad);
        l = grow(l, rowsPad);
        alpha = grow(alpha, rowsPad);
        qPos = rowsPad > qPos.length ? new long[rowsPad] : qPos;
        rowAt = rowsPad > rowAt.length ? new int[rowsPad] : rowAt;
        outAt = rowsPad > outAt.length ? new int[rowsPad] : outAt;
        s = grow(s, (long) chunk * rowsPad);
        k = grow(k, (long) chunk * dim);
        v = grow(v, (long) chunk * cols);
        int rawNeed = Math.max(dim, cols);
        raw = rawNeed > raw.length ? new short[rawNeed] : raw;
        row = grow(row, Math.max(dim, cols));
        bias = grow(bias, chunk);
        keys = chunk > keys.length ? new int[chunk] : keys;
        kOff = chunk > kOff.length ? new int[chunk] : kOff;
        vOff = chunk > vOff.length ? new int[chunk] : vOff;
    }

    /** Drops the vector-loaded arrays that the garbage collector moved off their boundary (allocated again by ensure). */
    private void realign() {
        qT = AlignedArrays.aligned(qT) ? qT : EMPTY;
        qR = AlignedArrays.aligned(qR) ? qR : EMPTY;
        sR = AlignedArrays.aligned(sR) ? sR : EMPTY;
        o = AlignedArrays.aligned(o) ? o : EMPTY;
        s = AlignedArrays.aligned(s) ? s : EMPTY;
        k = AlignedArrays.aligned(k) ? k : EMPTY;
        v = AlignedArrays.aligned(v) ? v : EMPTY;
    }

    private float[] grow(float[] a, long need) {
        if (need > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("tile: scratch of " + need + " floats does not fit a Java array");
        }
        if (need <= a.length) {
            return a;
        }
        float[] b = AlignedArrays.allocate((int) need);
        unalignable |= !AlignedArrays.aligned(b);
        return b;
    }

    /** Fills the first {@code n} entries of {@code a} with {@code x}. */
    static void fill(float[] a, int n, float x) {
        Arrays.fill(a, 0, n, x);
    }
}
