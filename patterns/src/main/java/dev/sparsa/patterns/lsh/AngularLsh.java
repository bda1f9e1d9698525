package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import java.util.List;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Angular (sign-random-projection) LSH with explicit, seeded projections (Charikar's SimHash, as
 * HyperAttention and Reformer use it): {@code bits} Gaussian directions {@code r_i} drawn from a
 * {@link SplittableRandom} with the given seed; the hash of {@code x} has bit {@code i} set when
 * {@code x · r_i > 0}. Vectors at a small angle agree on most bits. Reproducible across runs.
 *
 * @throws IllegalArgumentException if {@code bits} is not in [1, 30] or {@code dim < 1}
 */
public final class AngularLsh {
    /** Eight lanes, fixed: one vector holds eight directions (one byte of the hash). */
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    private static final int LANES = 8;
    private final int bits;
    private final int dim;
    private final float[] directions; // [bits][dim]

    public AngularLsh(int bits, int dim, long seed) {
        if (bits < 1 || bits > 30) {
            throw new IllegalArgumentException("bits: must be in [1, 30], got " + bits);
        }
        this.bits = bits;
        this.dim = Checks.atLeast("dim", dim, 1);
        SplittableRandom rnd = new SplittableRandom(seed);
        directions = new float[bits * dim];
        for (int i = 0; i < directions.length; i++) {
            directions[i] = (float) rnd.nextGaussian();
        }
    }

    public int bits() {
        return bits;
    }

    /**
     * The hash of row {@code row} of a flat {@code [n · dim]} array. Each projection {@code x · r_i}
     * is one chain of fused multiply-adds over the channels in order, the definition {@link
     * #hashAll} vectorises bitwise.
     */
    public int hash(float[] rows, int row) {
        int h = 0;
        int off = row * dim;
        for (int i = 0; i < bits; i++) {
            float s = 0;
            for (int x = 0; x < dim; x++) {
                s = Math.fma(rows[off + x], directions[i * dim + x], s);
            }
            if (s > 0) {
                h |= 1 << i;
            }
        }
        return h;
    }

    /**
     * Hashes of the first {@code n} rows of a flat {@code [n · dim]} array, bitwise {@link #hash} of
     * each (see {@link #hashAll(List, float[], int)}).
     *
     * @throws IllegalArgumentException if the array holds fewer than {@code n} rows
     */
    public int[] hashAll(float[] rows, int n) {
        return hashAll(List.of(this), rows, n)[0];
    }

    /**
     * Hashes of every row of (batch, head) of a tensor (any dtype): the same as {@code
     * hashAll(Vectors.rows(t, batch, head), seqLen)} without the full copy.
     *
     * @throws IllegalArgumentException if the tensor's dim is not this hash's dim
     */
    public int[] hashAll(dev.sparsa.tensor.Tensor t, int batch, int head) {
        return hashAll(List.of(this), t, batch, head)[0];
    }

    /**
     * The hashes of the first {@code n} rows of a flat {@code [n · dim]} array under each function of
     * {@code family} ({@code [function][row]}), each bitwise {@link #hash}. Several functions (Reformer's
     * rounds) are hashed in one pass: their directions are laid side by side, eight per vector
     * (channel-major copies), and two vectors of directions against six rows at a time keep twelve
     * independent FMA chains in flight on six row loads and two direction loads per channel; a lone
     * group of eight directions runs eight rows at a time.
     *
     * @throws IllegalArgumentException if the family is empty or mixes dims, or the array holds
     *     fewer than {@code n} rows
     */
    public static int[][] hashAll(List<AngularLsh> family, float[] rows, int n) {
        Groups g = groups(family);
        if (n < 0 || rows == null || rows.length < (long) n * g.dim) {
            throw new IllegalArgumentException("rows: need n >= 0 and n·dim floats, got n=" + n + " for dim " + g.dim);
        }
        int[][] out = new int[family.size()][n];
        g.hashRows(rows, n, out, 0);
        return out;
    }

    /**
     * {@link #hashAll(List, float[], int)} of every row of (batch, head) of a tensor (any dtype), read
     * {@value #BLOCK_ROWS} rows at a time into a small buffer.
     *
     * @throws IllegalArgumentException if the family is empty or mixes dims, or the tensor's dim is
     *     not theirs
     */
    public static int[][] hashAll(List<AngularLsh> family, dev.sparsa.tensor.Tensor t, int batch, int head) {
        Groups g = groups(family);
        if (t.dim() != g.dim) {
            throw new IllegalArgumentException("t: dim " + t.dim() + " but the directions have dim " + g.dim);
        }
        int n = t.seqLen();
        int[][] out = new int[family.size()][n];
        float[] buf = new float[BLOCK_ROWS * g.dim];
        for (int r = 0; r < n; r += BLOCK_ROWS) {
            int m = Math.min(BLOCK_ROWS, n - r);
            for (int j = 0; j < m; j++) {
                t.readRow(batch, head, r + j, buf, j * g.dim);
            }
            g.hashRows(buf, m, out, r);
        }
        return out;
    }

    /** Rows read from a tensor per block: a multiple of both kernels' row counts (6 and 8). */
    private static final int BLOCK_ROWS = 48;

    private static Groups groups(List<AngularLsh> family) {
        if (family == null || family.isEmpty()) {
            throw new IllegalArgumentException("family: need at least one hash function");
        }
        int dim = family.get(0).dim;
        int count = 0;
        for (AngularLsh f : family) {
            if (f.dim != dim) {
                throw new IllegalArgumentException("family: dims differ (" + dim + " and " + f.dim + ")");
            }
            count += (f.bits + LANES - 1) / LANES;
        }
        float[][] dirT = new float[count][];
        int[] owner = new int[count];
        int[] shift = new int[count];
        int at = 0;
        for (int i = 0; i < family.size(); i++) {
            AngularLsh f = family.get(i);
            for (int g = 0; g * LANES < f.bits; g++, at++) {
                dirT[at] = f.transposed(g);
                owner[at] = i;
                shift[at] = g * LANES;
            }
        }
        float[][] pairs = new float[count / 2][];
        for (int g = 0; g < pairs.length; g++) {
            pairs[g] = interleaved(dirT[2 * g], dirT[2 * g + 1], dim);
        }
        return new Groups(dim, dirT, pairs, owner, shift);
    }

    /** Two channel-major groups as one: {@code [x · 16 + lane]}, the first group's lanes first. */
    private static float[] interleaved(float[] a, float[] b, int dim) {
        float[] p = new float[dim * 2 * LANES];
        for (int x = 0; x < dim; x++) {
            System.arraycopy(a, x * LANES, p, x * 2 * LANES, LANES);
            System.arraycopy(b, x * LANES, p, x * 2 * LANES + LANES, LANES);
        }
        return p;
    }

    /**
     * Groups of eight directions of a family: channel-major directions, consecutive groups
     * interleaved in pairs, the function each group belongs to and the bit its first lane sets.
     */
    private record Groups(int dim, float[][] dirT, float[][] pairs, int[] owner, int[] shift) {
        /** Hashes rows {@code [0, m)} of {@code rows} into {@code out[·][at + row]}. */
        void hashRows(float[] rows, int m, int[][] out, int at) {
            int g = 0;
            for (; g + 1 < dirT.length; g += 2) {
                float[] pair = pairs[g / 2];
                int[] o0 = out[owner[g]];
                int[] o1 = out[owner[g + 1]];
                int r = 0;
                for (; r + 5 < m; r += 6) {
                    sixRows(rows, r, dim, pair, o0, shift[g], o1, shift[g + 1], at);
                }
                for (; r < m; r++) {
                    o0[at + r] |= oneRow(rows, r * dim, dim, dirT[g]) << shift[g];
                    o1[at + r] |= oneRow(rows, r * dim, dim, dirT[g + 1]) << shift[g + 1];
                }
            }
            if (g < dirT.length) {
                int[] o = out[owner[g]];
                int r = 0;
                for (; r + 7 < m; r += 8) {
                    eightRows(rows, r, dim, dirT[g], o, shift[g], at);
                }
                for (; r < m; r++) {
                    o[at + r] |= oneRow(rows, r * dim, dim, dirT[g]) << shift[g];
                }
            }
        }

    }

    /** Directions {@code [8g, 8g + 8)} channel-major: {@code [x · 8 + lane]}, zero past {@code bits}. */
    private float[] transposed(int g) {
        float[] t = new float[dim * LANES];
        for (int l = 0; l < LANES && g * LANES + l < bits; l++) {
            for (int x = 0; x < dim; x++) {
                t[x * LANES + l] = directions[(g * LANES + l) * dim + x];
            }
        }
        return t;
    }

    // The kernels are small and called often, so the JIT compiles them (with the vector intrinsics)
    // early instead of running a long first call in the interpreter's fallback.

    /** Six rows from {@code r} against two groups of directions ({@code pair}: {@code [x · 16 + lane]}). */
    private static void sixRows(float[] rows, int r, int dim, float[] pair, int[] out0, int shift0, int[] out1,
                                int shift1, int at) {
        int o0 = r * dim;
        FloatVector a0 = FloatVector.zero(S);
        FloatVector a1 = FloatVector.zero(S);
        FloatVector a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        FloatVector a4 = FloatVector.zero(S);
        FloatVector a5 = FloatVector.zero(S);
        FloatVector b0 = FloatVector.zero(S);
        FloatVector b1 = FloatVector.zero(S);
        FloatVector b2 = FloatVector.zero(S);
        FloatVector b3 = FloatVector.zero(S);
        FloatVector b4 = FloatVector.zero(S);
        FloatVector b5 = FloatVector.zero(S);
        for (int x = 0; x < dim; x++) {
            FloatVector d = FloatVector.fromArray(S, pair, x * 2 * LANES);
            FloatVector e = FloatVector.fromArray(S, pair, x * 2 * LANES + LANES);
            FloatVector q = FloatVector.broadcast(S, rows[o0 + x]);
            a0 = q.fma(d, a0);
            b0 = q.fma(e, b0);
            q = FloatVector.broadcast(S, rows[o0 + dim + x]);
            a1 = q.fma(d, a1);
            b1 = q.fma(e, b1);
            q = FloatVector.broadcast(S, rows[o0 + 2 * dim + x]);
            a2 = q.fma(d, a2);
            b2 = q.fma(e, b2);
            q = FloatVector.broadcast(S, rows[o0 + 3 * dim + x]);
            a3 = q.fma(d, a3);
            b3 = q.fma(e, b3);
            q = FloatVector.broadcast(S, rows[o0 + 4 * dim + x]);
            a4 = q.fma(d, a4);
            b4 = q.fma(e, b4);
            q = FloatVector.broadcast(S, rows[o0 + 5 * dim + x]);
            a5 = q.fma(d, a5);
            b5 = q.fma(e, b5);
        }
        int o = at + r;
        out0[o] |= byteOf(a0) << shift0;
        out0[o + 1] |= byteOf(a1) << shift0;
        out0[o + 2] |= byteOf(a2) << shift0;
        out0[o + 3] |= byteOf(a3) << shift0;
        out0[o + 4] |= byteOf(a4) << shift0;
        out0[o + 5] |= byteOf(a5) << shift0;
        out1[o] |= byteOf(b0) << shift1;
        out1[o + 1] |= byteOf(b1) << shift1;
        out1[o + 2] |= byteOf(b2) << shift1;
        out1[o + 3] |= byteOf(b3) << shift1;
        out1[o + 4] |= byteOf(b4) << shift1;
        out1[o + 5] |= byteOf(b5) << shift1;
    }

    /** Eight rows from {@code r} against one group of directions ({@code [x · 8 + lane]}). */
    private static void eightRows(float[] rows, int r, int dim, float[] dirT, int[] out, int shift, int at) {
        int o0 = r * dim;
        FloatVector a0 = FloatVector.zero(S);
        FloatVector a1 = FloatVector.zero(S);
        FloatVector a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        FloatVector a4 = FloatVector.zero(S);
        FloatVector a5 = FloatVector.zero(S);
        FloatVector a6 = FloatVector.zero(S);
        FloatVector a7 = FloatVector.zero(S);
        for (int x = 0; x < dim; x++) {
            FloatVector d = FloatVector.fromArray(S, dirT, x * LANES);
            a0 = FloatVector.broadcast(S, rows[o0 + x]).fma(d, a0);
            a1 = FloatVector.broadcast(S, rows[o0 + dim + x]).fma(d, a1);
            a2 = FloatVector.broadcast(S, rows[o0 + 2 * dim + x]).fma(d, a2);
            a3 = FloatVector.broadcast(S, rows[o0 + 3 * dim + x]).fma(d, a3);
            a4 = FloatVector.broadcast(S, rows[o0 + 4 * dim + x]).fma(d, a4);
            a5 = FloatVector.broadcast(S, rows[o0 + 5 * dim + x]).fma(d, a5);
            a6 = FloatVector.broadcast(S, rows[o0 + 6 * dim + x]).fma(d, a6);
            a7 = FloatVector.broadcast(S, rows[o0 + 7 * dim + x]).fma(d, a7);
        }
        int o = at + r;
        out[o] |= byteOf(a0) << shift;
        out[o + 1] |= byteOf(a1) << shift;
        out[o + 2] |= byteOf(a2) << shift;
        out[o + 3] |= byteOf(a3) << shift;
        out[o + 4] |= byteOf(a4) << shift;
        out[o + 5] |= byteOf(a5) << shift;
        out[o + 6] |= byteOf(a6) << shift;
        out[o + 7] |= byteOf(a7) << shift;
    }

    /** Bits {@code [0, 8)} of one group's hash of the row at {@code rows[off, off + dim)} (the tail rows). */
    private static int oneRow(float[] rows, int off, int dim, float[] dirT) {
        FloatVector acc = FloatVector.zero(S);
        for (int x = 0; x < dim; x++) {
            acc = FloatVector.broadcast(S, rows[off + x]).fma(FloatVector.fromArray(S, dirT, x * LANES), acc);
        }
        return byteOf(acc);
    }

    /** A byte of a hash: the lanes whose projection is {@code > 0}. */
    private static int byteOf(FloatVector projections) {
        return (int) projections.compare(VectorOperators.GT, 0f).toLong();
    }

    /** Indices {@code 0..n-1} sorted by (hash, index). */
    public static int[] sortByBucket(int[] hashes) {
        int max = 0;
        for (int h : hashes) {
            max = Math.max(max, h);
        }
        if (max < (1 << 16)) {
            // a stable counting sort: (hash, index) order in O(n + buckets)
            int[] start = new int[max + 2];
            for (int h : hashes) {
                start[h + 1]++;
            }
            for (int b = 1; b < start.length; b++) {
                start[b] += start[b - 1];
            }
            int[] order = new int[hashes.length];
            for (int i = 0; i < hashes.length; i++) {
                order[start[hashes[i]]++] = i;
            }
            return order;
        }
        long[] packed = new long[hashes.length];
        for (int i = 0; i < hashes.length; i++) {
            packed[i] = ((long) hashes[i] << 32) | i;
        }
        java.util.Arrays.sort(packed);
        int[] order = new int[hashes.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = (int) packed[i];
        }
        return order;
    }

    /** Start (inclusive) of key chunk {@code i} of {@code chunks} over {@code n} sorted keys: {@code floor(i·n/chunks)}. */
    public static int chunkStart(int i, int chunks, int n) {
        return (int) ((long) i * n / chunks);
    }
}
